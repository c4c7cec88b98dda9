"""Pseudo-relevance feedback over the pool's own neighbourhood graph.

Papers on one topic sit close to each other. After a first ranking, the best few papers
are taken as probably relevant, and their relevance is spread along a k-nearest-neighbour
graph of the pool (label propagation, Zhou et al. 2004, "Learning with local and global
consistency"). A paper near several good papers rises even if it shares few words with
the profile. Everything here depends only on the pool, never on labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["NeighbourGraph", "best_rows", "standardize"]

NEIGHBOURS = 20
ALPHA = 0.8  # how much of a paper's score comes from its neighbours, the rest from itself
ITERATIONS = 20
FEEDBACK_DEPTH = 10  # the first ranking's top papers taken as relevant
MIN_GUESSES = 3
# A paper's density: its mean cosine to this many nearest papers (CSLS's k, Conneau et al. 2018).
DENSITY_NEIGHBOURS = 10
# Below this many papers a k-NN graph links nearly everything to everything: not used.
MIN_POOL = 5 * NEIGHBOURS
_BLOCK = 1024
# Propagated unit vectors kept per graph (each as long as the graph): every one of a 5,000-paper pool.
SPREAD_BYTES = 256 * 2**20
# Columns propagated in one product when spreads are kept (a profile's missing rows, then rows ahead).
SPREAD_BLOCK = 32


def best_rows(values: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The `k` of `rows` with the highest values, best first, equal values in row order: exactly
    ``rows[np.argsort(-values[rows], kind="stable")[:k]]`` without sorting every row."""
    wanted = -values[rows]
    if k <= 0:
        return rows[:0]
    if len(rows) > 4 * k:
        kth = np.partition(wanted, k - 1)[k - 1]
        if np.isfinite(kth):
            near = np.flatnonzero(wanted <= kth)  # in row order, ties included
            return rows[near[np.argsort(wanted[near], kind="stable")[:k]]]
    return rows[np.argsort(wanted, kind="stable")[:k]]


def standardize(values: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    """Zero mean, unit spread (measured over the ``over`` rows): signals can then be added.

    Measuring over the papers that may be recommended keeps a seed or a disliked paper,
    an outlier by construction, from squashing everyone else's scores.
    """
    sample = values if over is None or not over.any() else values[over]
    if sample.size == 0:
        return np.zeros_like(values, dtype=float)
    # sample.mean() and sample.std(), the same reductions without numpy's per-call dispatch (a pass
    # standardises a few times per profile, for thousands of profiles).
    if sample.dtype == np.float64:
        mean = np.add.reduce(sample, axis=None) / sample.size
        deviation = sample - mean
        spread = np.sqrt(np.add.reduce(deviation * deviation, axis=None) / sample.size)
    else:
        mean, spread = sample.mean(), sample.std()
    if not np.isfinite(spread) or spread < 1e-12:
        return np.zeros_like(values, dtype=float)
    return (values - mean) / spread


class NeighbourGraph:
    """Symmetric, normalised k-NN graph of the pool, built once and shared by all interests."""

    def __init__(self, vectors: np.ndarray | sp.spmatrix, k: int = NEIGHBOURS) -> None:
        n = vectors.shape[0]
        self.size = n
        k = min(k, max(n - 1, 0))
        # Each paper's mean cosine to its nearest ones: a hub, close to everything, has a high one.
        self.density = np.zeros(n)
        if k == 0:
            self.matrix = sp.csr_matrix((n, n))
            return
        rows, cols, vals, density = [], [], [], []
        # Cosine similarities block by block: a 50,000-paper pool never needs an n x n array.
        for start in range(0, n, _BLOCK):
            block = vectors[start : start + _BLOCK] @ vectors.T
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -np.inf
            nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
            sims = np.take_along_axis(block, nearest, axis=1)
            density.append(np.sort(sims, axis=1)[:, -min(DENSITY_NEIGHBOURS, k) :].mean(axis=1))
            rows.append(np.repeat(np.arange(start, start + block.shape[0]), k))
            cols.append(nearest.ravel())
            vals.append(np.maximum(sims.ravel(), 0.0))
        self.density = np.concatenate(density)
        weights = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n, n))
        weights = weights.maximum(weights.T)
        degree = np.asarray(weights.sum(axis=1)).ravel()
        scale = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
        # float64 once: products with float64 score columns would cast a float32 matrix every time.
        self.matrix = sp.csr_matrix(scale @ weights @ scale, dtype=np.float64)
        self._spread: dict[int, np.ndarray] | None = None

    def remember_spread(self) -> None:
        """Keep each paper's propagated unit vector: propagation is linear, so the spread of a set of
        rows is the sum of theirs. Worth it when many interests rank over one graph (a pass's pool):
        their top papers repeat, and a new one costs one column of a batched product."""
        if self._spread is None:
            self._spread = {}

    def propagate(self, seeds: np.ndarray, alpha: float = ALPHA, iterations: int = ITERATIONS) -> np.ndarray:
        """Iterate f = alpha * W f + (1 - alpha) * y from the seed vector y."""
        scores = seeds.astype(float)
        kept = (1.0 - alpha) * seeds
        for _ in range(iterations):
            # alpha * (W f) + kept, in place: the same operations in the same order, fewer arrays.
            scores = self.matrix @ scores
            scores *= alpha
            scores += kept
        return scores

    def feedback(
        self, first: np.ndarray, allowed: np.ndarray, known: Sequence[int] = (), depth: int = FEEDBACK_DEPTH
    ) -> np.ndarray:
        """Spread relevance from the top ``depth`` allowed papers of the first ranking.

        ``first`` and ``allowed`` cover the first rows of the graph (the pool); ``known``
        are rows of papers known to be relevant (seeds, liked), which spread too.
        """
        seeds = np.zeros(self.size)
        candidates = np.flatnonzero(allowed)
        # Known papers take their place among the ``depth`` trusted ones; a few guesses always join.
        guesses = max(depth - len(set(known)), MIN_GUESSES)
        ahead: np.ndarray | None = None
        if self._spread is not None:  # the next best are likely another profile's top: spread them too
            ranked = best_rows(first, candidates, guesses + SPREAD_BLOCK)
            top, ahead = ranked[:guesses], ranked[guesses:]
        else:
            top = best_rows(first, candidates, guesses)
        seeds[top] = 1.0
        seeds[list(known)] = 1.0
        return self._spread_of(np.flatnonzero(seeds), ahead) if seeds.any() else seeds

    def _spread_of(self, rows: np.ndarray, ahead: np.ndarray | None = None) -> np.ndarray:
        """propagate() of the rows' indicator vector, as the sum of each row's own spread.

        Always summed, never propagated at once: a spread kept from an earlier profile is then
        bit for bit the one computed afresh, so profiles rank alike (ties included) whether their
        pool keeps spreads or not. Where spreads are kept, missing rows are propagated together with
        rows `ahead` not kept yet, up to SPREAD_BLOCK columns: a column of a wide product costs about
        half of a lone one, and comes out bit for bit the same (each column adds in its own order)."""
        wanted = [int(r) for r in rows]
        kept = self._spread if self._spread is not None else {}
        found = {r: kept[r] for r in wanted if r in kept}
        missing = [r for r in wanted if r not in kept]
        if missing:
            room = SPREAD_BYTES // max(8 * self.size, 1)
            batch = list(missing)
            if self._spread is not None and ahead is not None:
                asked = set(missing)
                extra = [int(r) for r in ahead if int(r) not in kept and int(r) not in asked]
                extra = extra[: max(SPREAD_BLOCK - len(missing), 0)]
                if len(kept) + len(missing) + len(extra) <= room:  # never evict for a guess
                    batch += extra
            units = np.zeros((self.size, len(batch)))
            units[batch, np.arange(len(batch))] = 1.0
            spread = self.propagate(units)
            while self._spread and len(self._spread) + len(batch) > room:
                del self._spread[next(iter(self._spread))]
            for i, row in enumerate(batch):
                column = spread[:, i].copy()
                if i < len(missing):
                    found[row] = column
                if self._spread is not None:
                    self._spread[row] = column
        total = np.zeros(self.size)
        for row in wanted:
            total += found[row]
        return total
