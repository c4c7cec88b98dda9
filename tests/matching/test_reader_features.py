"""The reader's feature model: what it sees of a paper, what it learns, and how the ranker uses it."""

from __future__ import annotations

import numpy as np
import pytest

from service.matching import reader_model
from service.matching.documents import PaperDoc
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import MatchContext, score_pool
from service.matching.reader_features import _similarities, interest_features
from service.matching.reader_model import feature_blend_weight, train_feature_model
from tests.matching.test_reader_model import PAPERS, WordEmbedder


def test_a_labelled_paper_is_never_compared_with_itself() -> None:
    vectors = np.eye(4)[[0, 0, 1, 1, 2]] * 1.0  # rows 0 and 1 the same paper, 2 and 3 too
    mean, highest = _similarities(vectors, [0, 2, 3], 5)
    # Row 0 is not compared with itself: its neighbours among the labelled rows are 2 and 3.
    assert highest[0] == 0.0 and mean[0] == 0.0
    assert highest[2] == 1.0 and mean[2] == 0.5  # row 3 is its twin, row 0 unrelated
    assert highest[1] == 1.0 and np.isclose(mean[1], 1 / 3)  # an unlabelled row sees all three
    alone, alone_max = _similarities(vectors, [4], 5)
    assert alone[4] == 0.0 and alone_max[4] == 0.0  # no other labelled paper: no evidence


def test_features_cover_the_examples_as_words_and_as_meaning() -> None:
    context = MatchContext(PAPERS, embedder=WordEmbedder())
    allowed = np.ones(len(PAPERS), dtype=bool)
    allowed[[0, 1, 2, 3]] = False
    interest = compile_interest(Interest("g", keywords="coloring", seeds=("x0",)))
    names, features = interest_features(interest, context, [0, 1, 2], [3], allowed)
    assert names == [
        "keywords_bm25f",
        "keywords_present",
        "keywords_semantic",
        "liked_tfidf_mean",
        "liked_tfidf_max",
        "liked_semantic_mean",
        "liked_semantic_max",
        "disliked_tfidf_mean",
        "disliked_tfidf_max",
        "disliked_semantic_mean",
        "disliked_semantic_max",
    ]
    assert features.shape == (len(PAPERS), len(names))
    assert np.allclose(features[allowed].mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(features[allowed].std(axis=0), 1.0, atol=1e-5)


def test_keyword_features_only_with_keywords_and_semantic_only_with_embeddings() -> None:
    lexical = MatchContext(PAPERS[:30])
    allowed = np.ones(30, dtype=bool)
    names, features = interest_features(
        compile_interest(Interest("g", keywords='"graph coloring", bounds')), lexical, [0], [], allowed
    )
    assert names == ["keywords_bm25f", "keywords_present", "liked_tfidf_mean", "liked_tfidf_max"]
    assert features.shape == (30, 4) and np.isfinite(features).all()
    present = features[:, names.index("keywords_present")]
    both = [i for i, p in enumerate(PAPERS[:30]) if "coloring" in p.title and "bounds" in p.abstract]
    neither = [i for i, p in enumerate(PAPERS[:30]) if "matching" in p.title and "bounds" not in p.abstract]
    assert present[both].min() > present[neither].max()


def test_feature_model_weights_what_separates_liked_from_disliked() -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((200, 3))
    positive = list(np.argsort(-features[:, 0])[:10])  # liked papers stand out on feature 0 only
    negative = list(np.argsort(features[:, 0])[:10])
    background = [r for r in range(200) if r not in positive and r not in negative]
    weights = train_feature_model(features, positive, negative, background)
    assert weights is not None and weights.shape == (4,)
    assert weights[0] > 5 * max(abs(weights[1]), abs(weights[2]))
    again = train_feature_model(features.copy(), list(positive), list(negative), list(background))
    assert again is not None and again.tobytes() == weights.tobytes()
    assert train_feature_model(features, [], negative, background) is None
    assert train_feature_model(features[:, :0], positive, negative, background) is None


def test_feature_blend_grows_with_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert feature_blend_weight(50) == 0.0  # off by default: it did not beat the hybrid (README)
    monkeypatch.setattr(reader_model, "FEATURE_BLEND_MAX", 1.0)
    assert feature_blend_weight(0) == 0.0
    assert 0 < feature_blend_weight(5) < feature_blend_weight(50) < 1.0


def test_on_the_lexical_path_feedback_moves_the_ranking_through_the_feature_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No embeddings: likes of one topic and dislikes of the other lift the liked topic."""
    monkeypatch.setattr(reader_model, "FEATURE_BLEND_MAX", 1.0)
    papers = [
        PaperDoc(f"y{i}", f"{topic} note {i}", f"a note on {topic} {extra}", ())
        for i, (topic, extra) in enumerate(
            [(t, e) for t in ("sparse solvers", "sparse sensing") for e in ("theory", "practice", "codes")]
            * 10
        )
    ]
    context = MatchContext(papers)
    liked = [p.id for p in papers if "solvers" in p.title][:6]
    disliked = [p.id for p in papers if "sensing" in p.title][:6]
    interest = Interest("g", keywords="sparse", liked=tuple(liked), disliked=tuple(disliked))
    ranking = score_pool(compile_interest(interest), context)
    assert "learned_features" in ranking.signals
    learned = ranking.signals["learned_features"]
    solvers = [i for i, p in enumerate(papers) if "solvers" in p.title and ranking.allowed[i]]
    sensing = [i for i, p in enumerate(papers) if "sensing" in p.title and ranking.allowed[i]]
    assert learned[solvers].min() > learned[sensing].max()
    order = np.argsort(-np.where(ranking.allowed, ranking.scores, -np.inf), kind="stable")[:10]
    assert all("solvers" in papers[i].title for i in order)
    monkeypatch.setattr(reader_model, "FEATURE_BLEND_MAX", 0.0)
    assert "learned_features" not in score_pool(compile_interest(interest), context).signals
