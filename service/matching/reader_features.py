"""What the reader's feature model sees of each paper: the signals paperboy already computes.

For one interest and one pool, a row per paper (pool and reference papers alike) of:

* the keywords: BM25F (title, abstract, phrase bonus), the share of keyword terms and phrases
  present, and with embeddings the cosine to the keywords' vector (moved towards its nearest
  papers, as the ranker does);
* the examples: mean and highest similarity to the positive papers (seeds, liked) and to the
  disliked ones, as TF-IDF cosine and, with embeddings, as sentence-vector cosine.

A labelled paper is never compared with itself (leave one out): a seed would otherwise look
like a perfect match to the seeds, and the model would learn nothing from it. Every column is
standardised over the papers that may be recommended, like the ranker's signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .diffusion import standardize
from .interests import CompiledInterest, plain_text

if TYPE_CHECKING:
    from .ranking import MatchContext

__all__ = ["interest_features"]


def _similarities(
    matrix: np.ndarray | sp.spmatrix, rows: Sequence[int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and highest cosine of every row to ``rows``, each labelled row left out of its own."""
    if not len(rows):
        return np.zeros(size), np.zeros(size)
    sims = matrix @ matrix[list(rows)].T
    sims = np.asarray(sims.toarray() if sp.issparse(sims) else sims, dtype=np.float64)
    own = np.zeros_like(sims, dtype=bool)
    own[list(rows), np.arange(len(rows))] = True
    counts = len(rows) - own.sum(axis=1)
    total = np.where(own, 0.0, sims).sum(axis=1)
    mean = np.divide(total, counts, out=np.zeros(size), where=counts > 0)
    highest = np.where(own, -np.inf, sims).max(axis=1)
    return mean, np.where(np.isfinite(highest), highest, 0.0)


def interest_features(
    compiled: CompiledInterest,
    context: MatchContext,
    positive: Sequence[int],
    negative: Sequence[int],
    allowed: np.ndarray,
) -> tuple[list[str], np.ndarray]:
    """Feature names and a (papers x features) matrix over every paper of the context.

    ``allowed`` (the pool's rows) is what the columns are standardised over.
    """
    from .ranking import _expanded  # ranking imports this module

    size = len(context.docs)
    over = np.zeros(size, dtype=bool)
    over[: len(allowed)] = allowed
    names: list[str] = []
    columns: list[np.ndarray] = []
    worded = [q for q in (compiled.keywords, compiled.query) if q is not None]
    if worded:
        index = context.index
        names.append("keywords_bm25f")
        columns.append(sum((index.score(q.root) for q in worded), np.zeros(size)))
        leaves = compiled.positives
        if leaves:
            names.append("keywords_present")
            present = sum((index.mask(leaf).astype(float) for leaf in leaves), np.zeros(size))
            columns.append(present / len(leaves))
        text = ", ".join(plain_text(q) for q in worded)
        if context.embeddings is not None and text:
            names.append("keywords_semantic")
            query = context.embed_text(text)
            columns.append(_expanded(context.embeddings @ query, query, context.embeddings, over))
    examples: list[tuple[str, np.ndarray | sp.spmatrix]] = [("tfidf", context.tfidf)]
    if context.embeddings is not None:
        examples.append(("semantic", context.embeddings))
    for label, rows in (("liked", positive), ("disliked", negative)):
        if not rows:
            continue
        for kind, matrix in examples:
            mean, highest = _similarities(matrix, rows, size)
            names += [f"{label}_{kind}_mean", f"{label}_{kind}_max"]
            columns += [mean, highest]
    if not columns:
        return names, np.zeros((size, 0))
    return names, np.column_stack([standardize(c, over) for c in columns])
