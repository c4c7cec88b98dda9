"""Near-duplicate suppression: the same work twice (a re-post, a journal version) shows once."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np

from .analysis import terms
from .documents import PaperDoc

if TYPE_CHECKING:
    from .ranking import MatchContext

__all__ = ["is_near_duplicate", "shingles", "suppress_duplicates"]

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


class _Compared:
    """What a context's rankings learnt of its rows: their shingles and which pairs are duplicates
    (a pass's pool holds more papers than the text cache above, and meets the same pairs again)."""

    def __init__(self) -> None:
        self.shingles: dict[int, frozenset[tuple[str, ...]]] = {}
        self.pairs: dict[int, bool] = {}  # key: low row * 2**32 + high row


_COMPARED: WeakKeyDictionary[MatchContext, _Compared] = WeakKeyDictionary()


def is_near_duplicate(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    union = len(a | b)
    return union > 0 and len(a & b) / union >= SHINGLE_DUPLICATE


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
        if vectors is not None and kept and float(np.max(vectors[kept] @ vectors[row])) > EMBEDDING_DUPLICATE:
            continue
        if any(_duplicates(compared, context, row, other) for other in kept):
            continue
        kept.append(row)
        if len(kept) >= limit:
            break
    return np.array(kept, dtype=int)


def _duplicates(compared: _Compared, context: MatchContext, row: int, other: int) -> bool:
    pair = (row << 32) | other if row < other else (other << 32) | row
    same = compared.pairs.get(pair)
    if same is None:
        if len(compared.pairs) >= PAIRS_KEPT:  # a memo, not a record: start again rather than grow
            compared.pairs.clear()
        same = compared.pairs[pair] = is_near_duplicate(
            _shingles(compared, context, row), _shingles(compared, context, other)
        )
    return same


def _shingles(compared: _Compared, context: MatchContext, row: int) -> frozenset[tuple[str, ...]]:
    own = compared.shingles.get(row)
    if own is None:
        own = compared.shingles[row] = shingles(context.docs[row])
    return own
