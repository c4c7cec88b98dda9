"""Near-duplicate suppression: the same work twice (a re-post, a journal version) shows once."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

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


@lru_cache(maxsize=65_536)  # the same pairs meet again for profile after profile of a pass
def is_near_duplicate(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    union = len(a | b)
    return union > 0 and len(a & b) / union >= SHINGLE_DUPLICATE


def suppress_duplicates(order: np.ndarray, context: MatchContext, limit: int) -> np.ndarray:
    """Walk the ranking best first; drop a paper that repeats one already kept.

    Only the head of the ranking is compared (pairwise, at most ``limit`` kept papers), so
    exact Jaccard is cheap and needs no MinHash.
    """
    kept: list[int] = []
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    vectors = context.embeddings
    for row in order:
        row = int(row)
        if vectors is not None and kept and float(np.max(vectors[kept] @ vectors[row])) > EMBEDDING_DUPLICATE:
            continue
        own = shingles(context.docs[row])
        if any(is_near_duplicate(own, other) for other in kept_shingles):
            continue
        kept.append(row)
        kept_shingles.append(own)
        if len(kept) >= limit:
            break
    return np.array(kept, dtype=int)
