"""bench/relevance_depth.py: its "shipped" rule must spread what ranking spreads, else its table lies."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import relevance_depth

from service.matching.diffusion import NeighbourGraph


@pytest.fixture
def graph() -> NeighbourGraph:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(1_000, 16))
    return NeighbourGraph(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def _with_rule(rule: tuple[int | None, int, int], graph: NeighbourGraph, *args: object) -> np.ndarray:
    per, fixed, guesses = rule
    relevance_depth._rule.update(per=per, fixed=fixed, guesses=guesses)
    return relevance_depth._feedback(graph, *args)  # type: ignore[arg-type]


@pytest.mark.parametrize("known", [(), (3, 40, 77), (1, 2, 3, 4, 5, 6, 7, 8, 9)])
def test_the_shipped_rule_spreads_exactly_what_ranking_spreads(
    graph: NeighbourGraph, known: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(11)
    first = rng.normal(size=1_000)
    allowed = rng.random(1_000) > 0.1
    shipped = graph.feedback(first, allowed, known)
    assert np.array_equal(
        _with_rule(relevance_depth.RULES["main (10, 3 guesses)"], graph, first, allowed, known), shipped
    )


def test_a_depth_following_the_pool_trusts_only_the_seeds_when_they_fill_it(graph: NeighbourGraph) -> None:
    first = np.arange(1_000, dtype=float)  # the last rows rank first
    allowed = np.ones(1_000, dtype=bool)
    seeds = (10, 20, 30, 40, 50)  # 1,000 papers / 200 = 5 trusted: the seeds, no guess
    only_seeds = graph.propagate(np.isin(np.arange(1_000), seeds).astype(float))
    spread = _with_rule((200, 0, 0), graph, first, allowed, seeds)
    assert np.allclose(spread, only_seeds)
    assert not np.allclose(graph.feedback(first, allowed, seeds), only_seeds)  # shipped adds 5 guesses
