"""Which interests a batch of papers can interest by meaning: a screen over stored interest vectors.

With the sentence embedding on, the ranker sends a paper to a keywords interest when a word of
the interest is in it *or* when the cosine between the interest's keyword vector and the paper's
vector reaches ranking.SEMANTIC_EVIDENCE. The word half is the percolator's (percolator.py); this
is the other half: every stored interest vector against every paper vector of the batch, as one
blocked matrix product (100,000 interests x 5,000 papers is 0.5 G multiply-adds per 384 dims,
a few seconds on two cores; an approximate index would only pay if measured faster).

Usage (the batch path, service/matching/batch.py; vectors stored by service/interest_vectors.py)::

    screen = VectorScreen(interest_ids, interest_vectors)
    wanted = screen.wanted(paper_vectors)  # ids of interests with at least one paper in reach
    owners, paper_rows = screen.hits(paper_vectors)  # or every (interest, paper) pair in reach
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ranking import SEMANTIC_EVIDENCE

__all__ = ["MARGIN", "VectorScreen"]

# Vectors of one text from two runs of the model can differ in the last float32 bits: the screen
# keeps a margin below the ranker's floor so that rounding never rules out what the ranker takes.
MARGIN = 0.01
_BLOCK = 4096


class VectorScreen:
    """Interest vectors (unit length, one row per interest id) and the floor a paper must reach."""

    def __init__(
        self, interest_ids: Sequence[int], vectors: np.ndarray, floor: float = SEMANTIC_EVIDENCE - MARGIN
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(interest_ids), -1)
        if len(interest_ids) != len(set(interest_ids)):
            raise ValueError("interest_ids: each interest may have one vector only")
        self.ids = np.asarray(interest_ids, dtype=np.int64)
        self.vectors = vectors
        self.floor = floor

    def __len__(self) -> int:
        return len(self.ids)

    def reach(self, paper_vectors: np.ndarray) -> np.ndarray:
        """A boolean per interest: some paper's cosine to it reaches the floor."""
        papers = np.asarray(paper_vectors, dtype=np.float32)
        reached = np.zeros(len(self.ids), dtype=bool)
        if not len(papers) or not len(self.ids):
            return reached
        for start in range(0, len(self.ids), _BLOCK):
            block = self.vectors[start : start + _BLOCK] @ papers.T
            reached[start : start + _BLOCK] = (block >= self.floor).any(axis=1)
        return reached

    def hits(self, paper_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(interest ids, paper rows) of every pair that reaches the floor."""
        papers = np.asarray(paper_vectors, dtype=np.float32)
        owners: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        if len(papers):
            for start in range(0, len(self.ids), _BLOCK):
                interest_rows, paper_rows = np.nonzero(
                    self.vectors[start : start + _BLOCK] @ papers.T >= self.floor
                )
                owners.append(self.ids[start + interest_rows])
                rows.append(paper_rows.astype(np.int64))
        return np.concatenate(owners), np.concatenate(rows)

    def wanted(self, paper_vectors: np.ndarray) -> set[int]:
        """Ids of the interests some paper of the batch is close enough to."""
        return set(self.ids[self.reach(paper_vectors)].tolist())
