"""BM25F over title and abstract, boolean filtering, phrase bonus, TF-IDF vectors for seeds.

One :class:`LexicalIndex` covers a *pool* of papers (a batch of new papers, or a whole
evaluation set): statistics such as IDF and average lengths come from that pool, and every
operation returns one value per paper as a numpy array, so a query costs a few sparse
column reads rather than a Python loop over papers.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .documents import AnalyzedPaper
from .query import And, Node, Not, Phrase, Term

__all__ = ["BM25Params", "LexicalIndex"]

TEXT_FIELDS = ("title", "abstract")
MAX_PREFIX_EXPANSION = 64
# Leaf (word, phrase) results kept per index; each holds only the rows where the word occurs.
LEAVES_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class BM25Params:
    """Textbook BM25 constants; the title counts double (it is what the author chose to stress)."""

    k1: float = 1.2
    b: float = 0.75
    title_boost: float = 2.0
    # A quoted phrase that is present is worth this much more than its words scattered.
    phrase_bonus: float = 0.5


class LexicalIndex:
    """Sparse term statistics of a pool of analysed papers."""

    def __init__(self, papers: Sequence[AnalyzedPaper], params: BM25Params | None = None) -> None:
        self.papers = list(papers)
        self.params = params or BM25Params()
        self.vocab: dict[str, int] = {}
        n = len(self.papers)
        raw: dict[str, tuple[list[int], list[int], list[float]]] = {
            name: ([], [], []) for name in (*TEXT_FIELDS, "author")
        }
        for row, paper in enumerate(self.papers):
            for name, (rows, cols, vals) in raw.items():
                for term, positions in paper.field_terms(name).items():
                    rows.append(row)
                    cols.append(self.vocab.setdefault(term, len(self.vocab)))
                    vals.append(float(len(positions)))
        width = max(len(self.vocab), 1)
        self.tf = {
            name: sp.csc_matrix((vals, (rows, cols)), shape=(n, width))
            for name, (rows, cols, vals) in raw.items()
        }
        p = self.params
        norm = {}
        for name in (*TEXT_FIELDS, "author"):
            lengths = np.array([paper.lengths.get(name, 0) for paper in self.papers], dtype=float)
            avg = lengths.mean() if n and lengths.mean() > 0 else 1.0
            norm[name] = 1.0 / (1.0 - p.b + p.b * lengths / avg) if n else np.zeros(0)
        # BM25F: field term frequencies are length-normalised, boosted, summed, then saturated.
        text_tf = (
            sp.diags(norm["title"] * p.title_boost) @ self.tf["title"]
            + sp.diags(norm["abstract"]) @ self.tf["abstract"]
        )
        self.text_sat = _saturate(sp.csc_matrix(text_tf), p.k1)
        self.field_sat = {name: _saturate(sp.diags(norm[name]) @ self.tf[name], p.k1) for name in norm}
        present = (self.tf["title"] + self.tf["abstract"]) > 0
        df = np.asarray(present.sum(axis=0)).ravel()
        self.df = df
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        self._sorted_terms: list[str] | None = None
        self._terms_by_column: list[str] | None = None
        self._text_tf: sp.csc_matrix | None = None
        # Leaf results kept as (rows, values) of their non-zero entries: a dispatch pass ranks
        # profile after profile over one index, and most leaves are shared words.
        self._leaf_scores: dict[Term, tuple[np.ndarray, np.ndarray]] = {}
        self._leaf_masks: dict[Term | Phrase, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.papers)

    @property
    def terms_by_column(self) -> list[str]:
        """Column number -> term (built on first use; explanations need it, matching does not)."""
        if self._terms_by_column is None:
            self._terms_by_column = [""] * len(self.vocab)
            for term, col in self.vocab.items():
                self._terms_by_column[col] = term
        return self._terms_by_column

    # -- terms -----------------------------------------------------------------------------
    def expand(self, term: Term) -> list[int]:
        """Columns a term stands for: itself, or up to 64 most frequent terms for a prefix."""
        if not term.prefix:
            col = self.vocab.get(term.text)
            return [] if col is None else [col]
        if self._sorted_terms is None:
            self._sorted_terms = sorted(self.vocab)
        start = bisect.bisect_left(self._sorted_terms, term.text)
        cols = []
        for word in self._sorted_terms[start:]:
            if not word.startswith(term.text):
                break
            cols.append(self.vocab[word])
        cols.sort(key=lambda c: -self.df[c])
        return cols[:MAX_PREFIX_EXPANSION]

    def _matrix(self, field: str | None, kind: str) -> sp.csc_matrix:
        if kind == "sat":
            return self.text_sat if field is None else self.field_sat[field]
        if field is None:
            if self._text_tf is None:
                self._text_tf = sp.csc_matrix(self.tf["title"] + self.tf["abstract"])
            return self._text_tf
        return self.tf[field]

    def _column(self, matrix: sp.csc_matrix, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and values of one column's non-zero entries (what matrix[:, col] holds, without scipy's
        slicing overhead)."""
        start, end = matrix.indptr[col], matrix.indptr[col + 1]
        return matrix.indices[start:end], matrix.data[start:end]

    def term_scores(self, term: Term) -> np.ndarray:
        kept = self._leaf_scores.get(term)
        if kept is None:
            out = np.zeros(len(self))
            matrix = self._matrix(term.field, "sat")
            for col in self.expand(term):
                rows, values = self._column(matrix, col)
                # The same sums, element by element, as adding whole columns: zeros elsewhere add nothing.
                out[rows] += values * self.idf[col]
            out = out * term.weight
            rows = np.flatnonzero(out)
            kept = self._leaf_scores[self._bounded(self._leaf_scores, term)] = (rows, out[rows])
        out = np.zeros(len(self))
        out[kept[0]] = kept[1]
        return out

    def term_mask(self, term: Term) -> np.ndarray:
        kept = self._leaf_masks.get(term)
        if kept is None:
            out = np.zeros(len(self), dtype=bool)
            matrix = self._matrix(term.field, "tf")
            for col in self.expand(term):
                rows, values = self._column(matrix, col)
                out[rows[values > 0]] = True
            kept = self._leaf_masks[self._bounded(self._leaf_masks, term)] = np.flatnonzero(out)
        return self._as_mask(kept)

    def phrase_mask(self, phrase: Phrase) -> np.ndarray:
        """Papers where the phrase occurs with its words at their relative offsets."""
        kept = self._leaf_masks.get(phrase)
        if kept is None:
            mask = np.ones(len(self), dtype=bool)
            for text in phrase.terms:
                mask &= self.term_mask(Term(text, phrase.field))
            fields = TEXT_FIELDS if phrase.field is None else (phrase.field,)
            for row in np.flatnonzero(mask):
                paper = self.papers[row]
                mask[row] = any(phrase_occurs(paper.field_terms(f), phrase) for f in fields)
            kept = self._leaf_masks[self._bounded(self._leaf_masks, phrase)] = np.flatnonzero(mask)
        return self._as_mask(kept)

    def _as_mask(self, rows: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        mask[rows] = True
        return mask

    @staticmethod
    def _bounded(cache: dict[Any, Any], key: Any) -> Any:
        """`key`, after making room for it: the oldest entries go once a cache holds LEAVES_KEPT."""
        while len(cache) >= LEAVES_KEPT:
            try:
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError, StopIteration):
                break  # another thread (a shared context of service.digest.rank) made room meanwhile
        return key

    # -- nodes -----------------------------------------------------------------------------
    def mask(self, node: Node) -> np.ndarray:
        """Boolean filter: which papers satisfy the query node."""
        if isinstance(node, Term):
            return self.term_mask(node)
        if isinstance(node, Phrase):
            return self.phrase_mask(node)
        if isinstance(node, Not):
            return ~self.mask(node.child)
        masks = [self.mask(child) for child in node.children]
        if isinstance(node, And):
            return np.logical_and.reduce(masks)
        return np.logical_or.reduce(masks)

    def score(self, node: Node) -> np.ndarray:
        """Soft BM25F score of the positive leaves; words written side by side earn the phrase bonus."""
        if isinstance(node, Term):
            return self.term_scores(node)
        if isinstance(node, Phrase):
            zero = np.zeros(len(self))
            words = sum((self.term_scores(Term(t, node.field, weight=node.weight)) for t in node.terms), zero)
            present = self.phrase_mask(node)
            return np.where(present, words * (1.0 + self.params.phrase_bonus), 0.0)
        if isinstance(node, Not):
            return np.zeros(len(self))
        total = sum((self.score(child) for child in node.children), np.zeros(len(self)))
        implicit = implicit_phrase(node)
        if implicit is not None:
            total = total + np.where(self.phrase_mask(implicit), total * self.params.phrase_bonus, 0.0)
        return total

    # -- vectors ---------------------------------------------------------------------------
    def tfidf(self) -> sp.csr_matrix:
        """L2-normalised BM25F-weighted TF-IDF rows: the lexical side of "more like these"."""
        weighted = sp.csr_matrix(self.text_sat @ sp.diags(self.idf))
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted)


def _saturate(matrix: sp.spmatrix, k1: float) -> sp.csc_matrix:
    out = sp.csc_matrix(matrix, dtype=float, copy=True)
    out.data = out.data * (k1 + 1.0) / (k1 + out.data)
    return out


def phrase_occurs(positions: dict[str, list[int]], phrase: Phrase) -> bool:
    """True when every phrase term sits at its offset from some start position.

    With ``slop`` the words need only follow each other in order, each at most ``slop``
    positions further than written (so "analysis PDEs" still finds "analysis of PDEs").
    """
    first = positions.get(phrase.terms[0])
    if not first:
        return False
    if phrase.slop:
        return _in_order(positions, phrase, first)
    others = []
    for text, offset in zip(phrase.terms[1:], phrase.offsets[1:], strict=True):
        found = positions.get(text)
        if not found:
            return False
        others.append((set(found), offset))
    return any(all(start + offset in found for found, offset in others) for start in first)


def _in_order(positions: dict[str, list[int]], phrase: Phrase, first: list[int]) -> bool:
    following = [set(positions.get(t, ())) for t in phrase.terms[1:]]
    for start in first:
        current = start
        for found in following:
            nxt = next((current + d for d in range(1, phrase.slop + 2) if current + d in found), None)
            if nxt is None:
                break
            current = nxt
        else:
            return True
    return False


def implicit_phrase(node: Node) -> Phrase | None:
    """``kv cache`` (an AND of plain words) read as the phrase it probably is, for a bonus."""
    if not isinstance(node, And) or len(node.children) < 2:
        return None
    children = node.children
    if not all(isinstance(c, Term) and not c.prefix for c in children):
        return None
    fields = {c.field for c in children if isinstance(c, Term)}
    if len(fields) != 1:
        return None
    terms = tuple(c.text for c in children if isinstance(c, Term))
    return Phrase(terms, tuple(range(len(terms))), fields.pop(), slop=2)
