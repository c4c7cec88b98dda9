"""Pseudo-relevance feedback on the keywords' vector: the nearest papers say what the words mean."""

from __future__ import annotations

import numpy as np

from service.matching.ranking import KEYWORD_FEEDBACK_DEPTH, _expanded


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=float)
    return vector / np.linalg.norm(vector)


def test_papers_like_the_nearest_ones_rise() -> None:
    query = unit(1, 0, 0)
    near = [unit(0.9, 0.43, 0)] * KEYWORD_FEEDBACK_DEPTH  # the field writes about dimension 1 too
    like_near, other = unit(0.6, 0.8, 0), unit(0.7, 0, 0.71)
    filler = [unit(0.05, 0, 1)] * 10
    vectors = np.stack([*near, like_near, other, *filler])
    allowed = np.ones(len(vectors), dtype=bool)
    before = vectors @ query
    after = _expanded(before, query, vectors, allowed)
    row_like, row_other = KEYWORD_FEEDBACK_DEPTH, KEYWORD_FEEDBACK_DEPTH + 1
    assert before[row_other] > before[row_like]
    assert after[row_like] > after[row_other]
    # Papers that may not be sent do not steer it; a tiny pool is left alone.
    blocked = allowed.copy()
    blocked[:KEYWORD_FEEDBACK_DEPTH] = False
    assert (
        _expanded(before, query, vectors, blocked)[row_like]
        < _expanded(before, query, vectors, blocked)[row_other]
    )
    small = np.zeros(len(vectors), dtype=bool)
    small[:3] = True
    assert np.array_equal(_expanded(before, query, vectors, small), before)


def test_kept_paper_similarities_give_the_same_feedback() -> None:
    """With the top papers' cosines kept (a pool's), the moved vector's product is their mean plus
    the keywords' own cosines: the same values as one product with the moved vector."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(40, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = unit(*rng.normal(size=8))
    before = vectors @ query
    allowed = rng.random(40) > 0.2
    asked: list[list[int]] = []

    def kept(rows: np.ndarray) -> np.ndarray:
        asked.append(rows.tolist())
        return vectors[rows] @ vectors.T

    assert np.allclose(
        _expanded(before, query, vectors, allowed, kept), _expanded(before, query, vectors, allowed)
    )
    assert len(asked) == 1 and len(asked[0]) == KEYWORD_FEEDBACK_DEPTH
    assert all(allowed[r] for r in asked[0])
