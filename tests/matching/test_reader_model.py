"""The per-reader learned scorer: what it learns, that it is deterministic, and how it is blended."""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np
import pytest

from service.matching.documents import PaperDoc
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import MatchContext, score_pool
from service.matching.reader_model import (
    BLEND_MAX,
    Background,
    ReaderModel,
    blend_weight,
    train_reader_model,
)


class WordEmbedder:
    """A deterministic stand-in for MiniLM: hashed bag of words, L2-normalised."""

    model_id = "test-words"
    dimension = 64

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def clusters(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three topics as unit vectors around three directions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3]
    noisy = [c + 0.15 * rng.standard_normal((40, 16)) for c in centres]
    a, b, c = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in noisy)
    return a, b, c


def test_learns_the_liked_topic_and_away_from_the_disliked_one() -> None:
    a, b, c = clusters()
    background = Background.of(np.concatenate([a, b, c]))
    model = train_reader_model("m", a[:5], b[:5], background)
    assert model is not None and model.labels == 10
    scores_a, scores_b, scores_c = model.score(a[5:]), model.score(b[5:]), model.score(c[5:])
    assert np.percentile(scores_a, 10) > np.percentile(scores_c, 90)  # liked topic above the unlabelled
    assert scores_c.mean() > scores_b.mean()  # and the disliked topic below both


def test_ignored_papers_are_weak_negatives() -> None:
    a, b, c = clusters()
    background = Background.of(np.concatenate([a, b, c]))
    plain = train_reader_model("m", a[:5], np.empty((0, 16)), background)
    ignoring = train_reader_model("m", a[:5], np.empty((0, 16)), background, ignored=b[:10])
    assert plain is not None and ignoring is not None
    assert ignoring.score(b[10:]).mean() < plain.score(b[10:]).mean()
    assert ignoring.labels == 15


def test_no_positive_no_model_and_same_history_same_model() -> None:
    a, b, c = clusters()
    background = Background.of(c)
    assert train_reader_model("m", np.empty((0, 16)), b[:5], background) is None
    first = train_reader_model("m", a[:5], b[:5], background)
    again = train_reader_model("m", a[:5].copy(), b[:5].copy(), Background.of(c.copy()))
    assert first is not None and again is not None
    assert first.to_bytes() == again.to_bytes()
    restored = ReaderModel.from_bytes("m", first.to_bytes(), first.labels)
    assert np.allclose(restored.score(a), first.score(a), atol=1e-5)


def test_blend_weight_grows_with_labels() -> None:
    weights = [blend_weight(n) for n in (0, 1, 5, 20, 100, 1000)]
    assert weights[0] == 0.0
    assert all(x < y for x, y in itertools.pairwise(weights))
    assert weights[-1] < BLEND_MAX


PAPERS = [
    PaperDoc(f"x{i}", f"{topic} study {i}", f"we look at {topic} {extra} in detail", ())
    for i, (topic, extra) in enumerate(
        [(t, e) for t in ("graph coloring", "graph matching") for e in ("bounds", "algorithms", "limits")]
        * 20
    )
]


def test_the_model_reorders_the_hybrid_towards_what_the_reader_taught() -> None:
    """Keywords that fit both topics; a model taught the one ranked lower (20 likes, 20 dislikes) lifts it."""
    embedder = WordEmbedder()
    context = MatchContext(PAPERS, embedder=embedder)
    assert context.embeddings is not None

    def top_titles(interest: Interest) -> list[str]:
        ranking = score_pool(compile_interest(interest), context)
        order = np.argsort(-np.where(ranking.allowed, ranking.scores, -np.inf), kind="stable")[:10]
        return [PAPERS[i].title for i in order]

    def agreement(interest: Interest) -> float:
        """How closely the final scores follow the model's own scores."""
        ranking = score_pool(compile_interest(interest), context)
        return float(np.corrcoef(ranking.scores, model.score(vectors))[0, 1])

    without = top_titles(Interest("g", keywords="detail"))
    loser, winner = ("coloring", "matching") if "matching" in without[0] else ("matching", "coloring")
    assert sum(loser in t for t in without) < 5
    liked = [p.id for p in PAPERS if loser in p.title][:20]
    disliked = [p.id for p in PAPERS if winner in p.title][:20]
    vectors = context.embeddings
    model = train_reader_model(
        embedder.model_id,
        vectors[context.rows(liked)],
        vectors[context.rows(disliked)],
        Background.of(vectors),
    )
    assert model is not None
    with_model = top_titles(Interest("g", keywords="detail", model=model))
    assert sum(loser in t for t in with_model) >= sum(loser in t for t in without)
    assert agreement(Interest("g", keywords="detail", model=model)) > agreement(
        Interest("g", keywords="detail")
    )
    # With the likes and dislikes also in the interest (as the service passes them), it leads.
    taught = Interest("g", keywords="detail", liked=tuple(liked), disliked=tuple(disliked), model=model)
    assert all(loser in t for t in top_titles(taught))
    # A model of another embedding model is ignored, not misapplied.
    stranger = ReaderModel("other-model", model.weights, model.bias, model.labels)
    assert top_titles(Interest("g", keywords="detail", model=stranger)) == without


@pytest.mark.parametrize("labels", [0, 3])
def test_model_with_nothing_else_to_blend_is_safe(labels: int) -> None:
    embedder = WordEmbedder()
    context = MatchContext(PAPERS[:20], embedder=embedder)
    model = ReaderModel(embedder.model_id, np.ones(embedder.dimension), 0.0, labels)
    ranking = score_pool(compile_interest(Interest("g", keywords="coloring", model=model)), context)
    assert np.isfinite(ranking.scores).all()
