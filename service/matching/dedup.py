"""Near-duplicate suppression: the same work twice (a re-post, a journal version) shows once."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np
import scipy.sparse as sp

from .analysis import terms
from .documents import PaperDoc
from .memo import remembered

if TYPE_CHECKING:
    from .ranking import MatchContext

__all__ = ["is_near_duplicate", "remember_duplicates", "shingles", "suppress_duplicates"]

EMBEDDING_DUPLICATE = 0.95  # cosine of MiniLM vectors above which two abstracts say the same
SHINGLE_DUPLICATE = 0.7  # Jaccard of word 3-shingles above which two texts are one text
SHINGLE_SIZE = 3


def shingles(doc: PaperDoc) -> frozenset[tuple[str, ...]]:
    return _text_shingles(doc.title, doc.abstract)


@lru_cache(maxsize=4096)  # a pass compares the same pool papers for profile after profile
def _text_shingles(title: str, abstract: str) -> frozenset[tuple[str, ...]]:
    words = terms(f"{title} {abstract}")
    if len(words) < SHINGLE_SIZE:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1))


# Pairs remembered per context: a pass meets the same pairs profile after profile, but a 5,000-paper
# pool has 12.5M of them; a dict of int keys this long holds about 100 MB.
PAIRS_KEPT = 1_000_000
_BLOCK = 1024  # rows per product when finding every pair close in meaning


class _Compared:
    """What a context's rankings learnt of its rows: their shingles and which pairs are duplicates
    (a pass's pool holds more papers than the text cache above, and meets the same pairs again)."""

    def __init__(self) -> None:
        self.shingles: dict[int, frozenset[tuple[str, ...]]] = {}
        self.pairs: dict[int, bool] = {}  # key: low row * 2**32 + high row
        # Every row's near duplicates, when found for the whole context at once (remember_duplicates):
        # by text, and with the sentence embedding by meaning.
        self.near: dict[int, set[int]] | None = None
        self.close: dict[int, set[int]] | None = None


_COMPARED: WeakKeyDictionary[MatchContext, _Compared] = WeakKeyDictionary()


def is_near_duplicate(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    union = len(a | b)
    return union > 0 and len(a & b) / union >= SHINGLE_DUPLICATE


def remember_duplicates(context: MatchContext) -> None:
    """Find every pair of near-duplicate rows of the context at once: worth it when many rankings walk
    one context (a pass's pool), as each then checks a row with one lookup instead of comparing it
    with every paper kept so far. The same Jaccard of the same shingles as is_near_duplicate, from
    the counts of shared shingles (a sparse product); most rows have no duplicate at all."""
    compared = _COMPARED.setdefault(context, _Compared())
    if compared.near is not None:
        return
    columns: dict[tuple[str, ...], int] = {}
    rows: list[int] = []
    cols: list[int] = []
    sizes = np.zeros(len(context.docs))
    for row, doc in enumerate(context.docs):
        # Not kept (neither here nor in _text_shingles' cache): once the pairs are known, no ranking
        # needs a row's shingles again, and a 5,000-paper pool's take about 100 MB.
        own = _text_shingles.__wrapped__(doc.title, doc.abstract)
        sizes[row] = len(own)
        rows.extend([row] * len(own))
        cols.extend(columns.setdefault(shingle, len(columns)) for shingle in own)
    member = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(context.docs), max(len(columns), 1))
    )
    shared = sp.coo_matrix(member @ member.T)
    pair = shared.row < shared.col
    low, high, common = shared.row[pair], shared.col[pair], shared.data[pair]
    union = sizes[low] + sizes[high] - common
    same = (union > 0) & (common / np.maximum(union, 1) >= SHINGLE_DUPLICATE)
    near: dict[int, set[int]] = {}
    for a, b in zip(low[same].tolist(), high[same].tolist(), strict=True):
        near.setdefault(a, set()).add(b)
        near.setdefault(b, set()).add(a)
    compared.near = near
    compared.close = _close_by_meaning(context.embeddings) if context.embeddings is not None else None


def _close_by_meaning(vectors: np.ndarray) -> dict[int, set[int]]:
    """Every pair of rows whose vectors' cosine passes EMBEDDING_DUPLICATE, block by block. A product
    of matrices adds in its own order: a pair within float32 rounding of the bound may fall on the
    other side of it than a row-by-row product puts it."""
    close: dict[int, set[int]] = {}
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors.T
        rows, cols = np.nonzero(block > EMBEDDING_DUPLICATE)
        for a, b in zip((rows + start).tolist(), cols.tolist(), strict=True):
            if a != b:
                close.setdefault(a, set()).add(b)
    return close


def suppress_duplicates(order: np.ndarray, context: MatchContext, limit: int) -> np.ndarray:
    """Walk the ranking best first; drop a paper that repeats one already kept.

    Only the head of the ranking is compared (pairwise, at most ``limit`` kept papers), so
    exact Jaccard is cheap and needs no MinHash.
    """
    kept: list[int] = []
    vectors = context.embeddings
    compared = _COMPARED.setdefault(context, _Compared())
    for row in order:
        row = int(row)
        if compared.close is not None:
            close = compared.close.get(row)
            if close and any(other in close for other in kept):
                continue
        elif (
            vectors is not None and kept and float(np.max(vectors[kept] @ vectors[row])) > EMBEDDING_DUPLICATE
        ):
            continue
        if compared.near is not None:
            near = compared.near.get(row)
            if near and any(other in near for other in kept):
                continue
        elif any(_duplicates(compared, context, row, other) for other in kept):
            continue
        kept.append(row)
        if len(kept) >= limit:
            break
    return np.array(kept, dtype=int)


def _duplicates(compared: _Compared, context: MatchContext, row: int, other: int) -> bool:
    pair = (row << 32) | other if row < other else (other << 32) | row
    return remembered(compared.pairs, pair, PAIRS_KEPT, _compare, (compared, context, row, other))


def _compare(compared: _Compared, context: MatchContext, row: int, other: int) -> bool:
    return is_near_duplicate(_shingles(compared, context, row), _shingles(compared, context, other))


def _shingles(compared: _Compared, context: MatchContext, row: int) -> frozenset[tuple[str, ...]]:
    own = compared.shingles.get(row)
    if own is None:
        own = compared.shingles[row] = shingles(context.docs[row])
    return own
