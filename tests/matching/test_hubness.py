"""Hubness: papers in a dense clump near the reader's topic must not fill every list (CSLS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from service.matching import ranking
from service.matching.diffusion import DENSITY_NEIGHBOURS, MIN_POOL, NeighbourGraph
from service.matching.documents import PaperDoc
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import MatchContext, score_pool
from service.matching.reader_model import Background, train_reader_model


class TableEmbedder:
    """Each paper's vector looked up by its title (paper_text starts with the title and a full stop)."""

    model_id = "test-table"
    dimension = 32

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[text.split(".")[0]] for text in texts]).astype(np.float32)


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_density_is_the_mean_cosine_to_the_nearest_papers() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((150, 12))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph = NeighbourGraph(vectors)
    cosines = vectors @ vectors.T
    np.fill_diagonal(cosines, -np.inf)
    expected = np.sort(cosines, axis=1)[:, -DENSITY_NEIGHBOURS:].mean(axis=1)
    assert np.allclose(graph.density, expected)


def clump_pool() -> tuple[MatchContext, list[PaperDoc]]:
    """A broad topic (40 papers), a tight clump of 30 near-copies leaning towards it, 60 others."""
    rng = np.random.default_rng(5)
    axes = np.eye(32)
    table: dict[str, np.ndarray] = {}
    for i in range(40):
        table[f"topic{i}"] = unit(axes[0] + 0.2 * rng.standard_normal(32))
    for i in range(30):
        table[f"clump{i}"] = unit(unit(2 * axes[0] + axes[1]) + 0.005 * rng.standard_normal(32))
    for i in range(60):
        table[f"other{i}"] = unit(axes[2 + i % 28] + 0.08 * rng.standard_normal(32))
    docs = [PaperDoc(name, name) for name in table]
    assert len(docs) >= MIN_POOL
    return MatchContext(docs, embedder=TableEmbedder(table)), docs


SEEDS = tuple(f"topic{i}" for i in range(5))


def clump_papers_in_top(
    context: MatchContext, docs: list[PaperDoc], interest: Interest, signal: str, k: int = 20
) -> int:
    """How many of the clump's papers the interest's `signal` puts in its top k."""
    result = score_pool(compile_interest(interest), context)
    scores = np.where(result.allowed, result.signals[signal], -np.inf)
    return sum(docs[row].id.startswith("clump") for row in np.argsort(-scores)[:k])


def test_a_dense_clump_does_not_crowd_out_the_readers_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    context, docs = clump_pool()
    reader = Interest("reader", seeds=SEEDS)
    assert clump_papers_in_top(context, docs, reader, "seeds_semantic") == 0
    # Without the penalty the clump, closer to the seeds' mean than the topic's own spread, fills the list.
    monkeypatch.setattr(ranking, "HUBNESS_PENALTY", 0.0)
    assert clump_papers_in_top(context, docs, reader, "seeds_semantic") >= 5


def test_small_pools_keep_the_plain_cosine() -> None:
    """Below MIN_POOL there is no neighbour graph, so no density: the seeds' signal is the plain product."""
    context, docs = clump_pool()
    small = MatchContext(docs[: MIN_POOL // 2], embedder=context.embedder)
    interest = compile_interest(Interest("reader", seeds=("topic0", "topic1")))
    result = score_pool(interest, small)
    assert small.centred is not None
    expected = small.centred[: small.pool_size] @ small.centred[[0, 1]].mean(axis=0)
    assert np.allclose(result.signals["seeds_semantic"], expected)


def test_the_learned_scorer_is_read_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's learned weights are a direction too: a clump that appeared today (its papers are not
    in the background the model was trained against) does not fill its list either."""
    context, docs = clump_pool()
    assert context.embeddings is not None and context.embedder is not None
    earlier = [row for row, doc in enumerate(docs) if not doc.id.startswith("clump")]
    model = train_reader_model(
        context.embedder.model_id,
        context.embeddings[context.rows(SEEDS)],
        np.empty((0, context.embeddings.shape[1])),
        Background.of(context.embeddings[earlier]),
    )
    reader = Interest("reader", seeds=SEEDS, model=model)
    assert clump_papers_in_top(context, docs, reader, "learned") == 0
    monkeypatch.setattr(ranking, "HUBNESS_PENALTY", 0.0)
    assert clump_papers_in_top(context, docs, reader, "learned") >= 5
