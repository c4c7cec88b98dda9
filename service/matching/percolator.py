"""The inverse path: index the profiles, then let each batch of papers find its profiles.

Every profile's keywords, query and exclusions are rewritten as alternatives of
conjunctions (disjunctive normal form) over *features*: a term in the text, a term in
one field, or a prefix. A batch of papers becomes a sparse paper x feature matrix, and one
sparse product with the conjunction x feature matrix counts, for every paper and every
conjunction sharing a feature with it, how many required features are present. Pairs
sharing nothing are never touched: 100,000 profiles x 5,000 papers is a few sparse
products, not 500 million comparisons. Phrases are checked on positions only for the
pairs whose words are all present.

Percolation answers "which papers can this profile want, and how strongly by its words"
(BM25F); the digest then ranks a subscription's candidates with :func:`ranking.rank`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .documents import AnalyzedPaper
from .interests import CompiledInterest, Interest, compile_interest
from .lexical import LexicalIndex
from .normal_form import Conjunction, Literal

__all__ = ["PercolationResult", "ProfileIndex", "percolate"]

ROLE_KEYWORDS, ROLE_QUERY, ROLE_EXCLUDE = 0, 1, 2


@dataclass(slots=True)
class PercolationResult:
    """Matched (paper, profile) pairs with their BM25F score; rows index the batch."""

    paper_rows: np.ndarray
    profile_rows: np.ndarray
    scores: np.ndarray
    profile_ids: list[str]
    paper_ids: list[str]
    candidate_pairs: int = 0

    def by_profile(self, top_k: int | None = None) -> dict[str, list[tuple[str, float]]]:
        """Each matched profile's papers, best first."""
        out: dict[str, list[tuple[str, float]]] = {}
        order = np.lexsort((-self.scores, self.profile_rows))
        for i in order:
            bucket = out.setdefault(self.profile_ids[self.profile_rows[i]], [])
            if top_k is None or len(bucket) < top_k:
                bucket.append((self.paper_ids[self.paper_rows[i]], float(self.scores[i])))
        return out


@dataclass(slots=True)
class _Builder:
    features: dict[Literal, int] = field(default_factory=dict)
    pos: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    neg: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    weights: tuple[list[int], list[int], list[float]] = field(default_factory=lambda: ([], [], []))
    owner: list[int] = field(default_factory=list)
    role: list[int] = field(default_factory=list)
    checks: dict[int, Conjunction] = field(default_factory=dict)

    def feature(self, literal: Literal) -> int:
        return self.features.setdefault(literal, len(self.features))

    def add(self, profile: int, role: int, conj: Conjunction) -> None:
        row = len(self.owner)
        self.owner.append(profile)
        self.role.append(role)
        for literal in set(conj.positive):
            self.pos[0].append(row)
            self.pos[1].append(self.feature(literal))
        for literal in set(conj.negative):
            self.neg[0].append(row)
            self.neg[1].append(self.feature(literal))
        if conj.phrases or conj.negative_phrases or not conj.positive:
            self.checks[row] = conj


class ProfileIndex:
    """Conjunctions of every profile as sparse matrices; build once, percolate many batches."""

    def __init__(self, interests: Iterable[tuple[str, Interest | CompiledInterest]]) -> None:
        built = _Builder()
        self.profile_ids: list[str] = []
        self.compiled: list[CompiledInterest] = []
        has_keywords, has_query = [], []
        for profile_id, interest in interests:
            compiled = interest if isinstance(interest, CompiledInterest) else compile_interest(interest)
            row = len(self.profile_ids)
            self.profile_ids.append(profile_id)
            self.compiled.append(compiled)
            has_keywords.append(compiled.keywords is not None)
            has_query.append(compiled.query is not None)
            for role, forms in (
                (ROLE_KEYWORDS, compiled.keywords_dnf),
                (ROLE_QUERY, compiled.query_dnf),
                (ROLE_EXCLUDE, compiled.exclude_dnf),
            ):
                for conj in forms:
                    built.add(row, role, conj)
            for leaf in compiled.positives:
                for literal, weight in Literal.weighted(leaf):
                    built.weights[0].append(row)
                    built.weights[1].append(built.feature(literal))
                    built.weights[2].append(weight)
        self.literals = list(built.features)
        width = len(self.literals)
        conj_count = len(built.owner)
        ones = np.ones(len(built.pos[0]), dtype=np.int32)
        self.positive = sp.csr_matrix((ones, built.pos), shape=(conj_count, width), dtype=np.int32)
        ones = np.ones(len(built.neg[0]), dtype=np.int32)
        self.negative = sp.csr_matrix((ones, built.neg), shape=(conj_count, width), dtype=np.int32)
        self.required = np.asarray(self.positive.sum(axis=1)).ravel()
        self.weights = sp.csr_matrix(
            (built.weights[2], built.weights[:2]), shape=(len(self.profile_ids), width)
        )
        self.owner = np.array(built.owner, dtype=np.int64)
        self.role = np.array(built.role, dtype=np.int8)
        self.checks = built.checks
        self.has_keywords = np.array(has_keywords, dtype=bool)
        self.has_query = np.array(has_query, dtype=bool)

    def __len__(self) -> int:
        return len(self.profile_ids)


def _paper_features(index: ProfileIndex, batch: LexicalIndex) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Presence (0/1) and BM25F weight of every profile feature in every batch paper.

    For each field, a 0/1 placement matrix maps batch vocabulary columns onto the profile
    features they satisfy (a prefix feature collects every term it starts), so the whole
    batch is one sparse product per field.
    """
    vocab = batch.vocab
    ordered = sorted(vocab)
    placements: dict[str | None, tuple[list[int], list[int]]] = {}
    for f, literal in enumerate(index.literals):
        if literal.prefix:
            start = bisect.bisect_left(ordered, literal.term)
            end = bisect.bisect_left(ordered, literal.term + "\U0010ffff")
            batch_cols = [vocab[t] for t in ordered[start:end]]
        else:
            col = vocab.get(literal.term)
            batch_cols = [] if col is None else [col]
        rows, cols = placements.setdefault(literal.field, ([], []))
        rows.extend(batch_cols)
        cols.extend([f] * len(batch_cols))
    shape = (len(batch.idf), len(index.literals))
    weights = sp.csr_matrix((len(batch), len(index.literals)))
    for fld, (rows, cols) in placements.items():
        if not rows:
            continue
        place = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        sat = batch.text_sat if fld is None else batch.field_sat[fld]
        weights = weights + sp.csr_matrix(sat @ sp.diags(batch.idf)) @ place
    weights = sp.csr_matrix(weights)
    presence = weights.copy()
    presence.data = (presence.data > 0).astype(np.float64)
    return presence, weights


def _keys(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Sorted pair keys (row * width + column) of a canonical CSR matrix, and its values."""
    matrix.sum_duplicates()  # also sorts the column indices of every row
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices, matrix.data


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which ``keys`` occur in ``sorted_keys`` (binary search: no hashing of millions of ints)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys


def percolate(
    index: ProfileIndex, papers: Sequence[AnalyzedPaper], batch: LexicalIndex | None = None
) -> PercolationResult:
    """Every (paper, profile) pair where the profile's keywords/query match and no exclusion does.
    `batch`: the papers' lexical index when one is built already (a pool's match context)."""
    same = (
        batch is not None
        and len(batch) == len(papers)
        and all(a is b for a, b in zip(batch.papers, papers, strict=True))
    )
    batch = batch if batch is not None and same else LexicalIndex(papers)
    n, width = len(batch), len(index.owner)
    presence, weights = _paper_features(index, batch)
    counts = sp.csr_matrix(presence @ index.positive.T.astype(np.float64))
    candidate_pairs = counts.nnz
    keys, found = _keys(counts)
    keys = keys[found >= index.required[keys % max(width, 1)] - 0.5]
    # Conjunctions with no positive feature (pure exclusions) hold for every paper.
    empty = np.flatnonzero(index.required == 0)
    if empty.size:
        extra = (np.arange(n, dtype=np.int64)[:, None] * width + empty[None, :]).ravel()
        keys = np.union1d(keys, extra)
    if index.negative.nnz and keys.size:
        blocked, _ = _keys(sp.csr_matrix(presence @ index.negative.T.astype(np.float64)))
        keys = keys[~_member(blocked, keys)]
    rows, conjs = keys // max(width, 1), keys % max(width, 1)
    if index.checks:
        needs = np.zeros(width, dtype=bool)
        needs[list(index.checks)] = True
        keep = np.ones(keys.size, dtype=bool)
        for i in np.flatnonzero(needs[conjs]):
            keep[i] = index.checks[int(conjs[i])].verify(batch.papers[rows[i]])
        rows, conjs = rows[keep], conjs[keep]
    # One bit per role; the sparse sum of the de-duplicated roles is each pair's bit mask.
    codes = sp.csr_matrix((n, len(index)))
    for role in (ROLE_KEYWORDS, ROLE_QUERY, ROLE_EXCLUDE):
        mine = index.role[conjs] == role
        ones = np.ones(int(mine.sum()))
        role_pairs = sp.csr_matrix((ones, (rows[mine], index.owner[conjs[mine]])), shape=codes.shape)
        role_pairs.sum_duplicates()
        role_pairs.data[:] = float(1 << role)
        codes = codes + role_pairs
    pair_keys, code = _keys(sp.csr_matrix(codes))
    code = code.astype(np.int64)
    profile = pair_keys % len(index) if len(index) else pair_keys
    need = index.has_keywords[profile].astype(np.int64) | (index.has_query[profile].astype(np.int64) << 1)
    matched = pair_keys[((code & need) == need) & ((code & 4) == 0) & ((code & 3) > 0)]
    paper_rows, profile_rows = matched // max(len(index), 1), matched % max(len(index), 1)
    score_keys, score_values = _keys(sp.csr_matrix(weights @ index.weights.T))
    at = np.minimum(np.searchsorted(score_keys, matched), max(score_keys.size - 1, 0))
    scores = np.where(score_keys[at] == matched, score_values[at], 0.0) if score_keys.size else np.zeros(0)
    return PercolationResult(
        paper_rows, profile_rows, scores, index.profile_ids, [p.doc.id for p in papers], candidate_pairs
    )
