"""A batch of new papers against ALL stored profiles at once: who can want any of them at all.

Digests rank one subscription at a time (service.digest.rank.rank_papers), and ranking builds a
whole match context over the candidate papers even for a profile that shares no word with any of
them. One percolation of every stored interest over the batch (service.matching.percolator) says
beforehand which interests have a candidate; a subscription whose interests have none gets the
empty result the ranker would have returned, without being ranked.

The screen never rules out a profile the ranker would give papers:

* the ranker sends a paper only with evidence of its own. On the lexical path (no sentence
  embedding) an interest without seed or liked papers has evidence only when a word or phrase of
  its keywords or query is in the paper; the screen indexes exactly that ("any positive word or
  phrase"), and the query's and exclusions' filters when they hold no wildcard (the ranker expands
  a wildcard to the pool's 64 commonest words, the percolator to all of them: broader is safe where
  the wildcard asks for a word, not where it excludes one);
* with the sentence embedding on, a keywords interest also has evidence when its keyword vector is
  close enough to the paper's: the screen then also compares the stored interest vectors with the
  batch's paper vectors (service.matching.vector_screen, service.interest_vectors) and keeps every
  interest some paper reaches, whatever its filters say (broader is safe);
* interests with seed or liked papers, or followed authors, are never ruled out (closeness to the
  seeds needs no shared word, a followed author's paper is sent whatever its words);
* a profile created or edited after the screen was built, or that got a liked paper since, is
  never ruled out.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings, get_settings
from service.digest.model import DigestItem
from service.digest.rank import DatabaseEmbeddingCache, embedder_for, paper_doc, rank_papers, to_interest
from service.interest_vectors import interest_text, load_vector_screen
from service.matching.documents import analyze_paper
from service.matching.interests import CompiledInterest, Interest, InterestError, compile_interest
from service.matching.lexical import LexicalIndex
from service.matching.normal_form import TooComplex, to_dnf
from service.matching.percolator import ProfileIndex, percolate
from service.matching.query import And, Node, Not, Or, Query, Term
from service.matching.semantic import Embedder, embed_papers
from service.matching.vector_screen import VectorScreen
from service.models import Feedback, Paper, Profile
from service.models import Interest as InterestRow

__all__ = [
    "BatchScreen",
    "ScreenedRanker",
    "SemanticScreen",
    "StoredInterest",
    "evidence_form",
    "load_interests",
]

log = logging.getLogger(__name__)

# Entries of one percolation's (paper, interest) matrices the screen aims at: papers go through in
# blocks of about this many over the number of interests.
PAIRS_PER_BLOCK = 5_000_000
# (interest, paper) hits kept for per-subscription questions (16 bytes each); past it, each
# interest's newest hit only, which answers a pool exactly and anything else more broadly.
HITS_KEPT = 20_000_000
_NEVER = np.iinfo(np.int64).min


def _micros(at: dt.datetime | None) -> int:
    """A first_seen_at as an integer (SQLite gives naive UTC datetimes, PostgreSQL aware ones); a paper
    not stored yet counts as the newest (broader is safe)."""
    if at is None:
        return int(np.iinfo(np.int64).max)
    return int((at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp() * 1_000_000)


# What the screen knows of a profile: its interests (id, last edit) and whether it has liked papers.
Fingerprint = tuple[frozenset[tuple[int, dt.datetime]], bool]


@dataclass(frozen=True, slots=True)
class StoredInterest:
    """A stored interest in the matching engine's terms, with what identifies its version."""

    profile_id: int
    interest_id: int
    name: str
    updated_at: dt.datetime
    interest: Interest


def load_interests(session: Session, settings: Settings | None = None) -> list[StoredInterest]:
    """Every stored interest with its profile's feedback: two queries, whatever the number of profiles."""
    settings = settings or get_settings()
    liked: dict[int, list[str]] = defaultdict(list)
    disliked: dict[int, list[str]] = defaultdict(list)
    for profile_id, paper_id, relevant in session.execute(
        select(Feedback.profile_id, Feedback.paper_id, Feedback.relevant)
    ):
        (liked if relevant else disliked)[profile_id].append(str(paper_id))
    rows = session.scalars(select(InterestRow).order_by(InterestRow.id).execution_options(yield_per=5_000))
    return [
        StoredInterest(
            row.profile_id,
            row.id,
            row.name,
            row.updated_at,
            to_interest(row, liked.get(row.profile_id, []), disliked.get(row.profile_id, []), settings),
        )
        for row in rows
    ]


def _has_wildcard(node: Node) -> bool:
    if isinstance(node, Term):
        return node.prefix
    if isinstance(node, Not):
        return _has_wildcard(node.child)
    if isinstance(node, And | Or):
        return any(_has_wildcard(child) for child in node.children)
    return False


def evidence_form(compiled: CompiledInterest) -> CompiledInterest | None:
    """The interest as the screen indexes it, or None when words alone cannot rule a paper out."""
    interest = compiled.interest
    leaves = compiled.positives
    if interest.seeds or interest.liked or interest.authors or not leaves:
        return None
    evidence = Query(interest.keywords or interest.query, tuple(leaves))
    try:
        evidence_dnf = tuple(to_dnf(evidence.root))
    except TooComplex:
        return None
    query = compiled.query if compiled.query is not None and not _has_wildcard(compiled.query.root) else None
    excluded = tuple(node for node in compiled.exclude if not _has_wildcard(node))
    return CompiledInterest(
        interest,
        evidence,
        query,
        excluded,
        evidence_dnf,
        compiled.query_dnf if query is not None else (),
        tuple(conj for node in excluded for conj in to_dnf(node)),
    )


def may_want(compiled: CompiledInterest, index: LexicalIndex) -> bool:
    """Whether the interest may want a paper of the index's pool, on the lexical path: what percolating
    it over the pool decides (a positive word or phrase present, the filters passed), read from the
    pool's own index with the ranker's own masks (a wildcard expands as the ranker expands it)."""
    interest = compiled.interest
    leaves = compiled.positives
    if interest.seeds or interest.liked or interest.authors or not leaves:
        return True  # closeness to seeds needs no shared word; a followed author's paper needs none
    present = np.logical_or.reduce([index.mask(leaf) for leaf in leaves])
    if compiled.query is not None:
        present &= index.mask(compiled.query.root)
    for node in compiled.exclude:
        present &= ~index.mask(node)
    return bool(present.any())


def may_want_from(
    profile: Profile,
    interests: Sequence[str] | None,
    index: LexicalIndex,
    settings: Settings,
    reached: Mapping[str, bool] | None = None,
) -> bool:
    """False only when ranking the profile's interests (all, or those named) over the index's pool is
    sure to give nothing. The profile is read as it is now, so an edit or a new liked paper counts
    at once: nothing is kept between profiles but the index's own word masks.

    Without the sentence embedding `reached` is None. With it, `reached` says for each interest text
    (interest_vectors.interest_text) whether some pool paper's vector is close enough to the text's
    (vector_screen.VectorScreen.reach): such an interest is ranked whatever its filters say (broader
    is safe), and so is one whose text is not in `reached`."""
    liked = [str(f.paper_id) for f in profile.feedback if f.relevant]
    for row in profile.interests:
        if interests is not None and row.name not in interests:
            continue
        if row.authors:
            return True  # a followed author's paper is sent whatever its words
        try:
            compiled = compile_interest(to_interest(row, liked, [], settings))
        except InterestError:
            continue  # the ranker skips it too: it can never match
        if may_want(compiled, index):
            return True
        if reached is not None and reached.get(interest_text(compiled), True):
            return True
    return False


def fingerprint(profile: Profile) -> Fingerprint:
    return frozenset((i.id, i.updated_at) for i in profile.interests), any(
        f.relevant for f in profile.feedback
    )


class SemanticScreen:
    """The screen's half by meaning: interest vectors from the database, paper vectors from the cache."""

    def __init__(self, session: Session, embedder: Embedder) -> None:
        self.session = session
        self.embedder = embedder

    def load(self, interests: Sequence[tuple[int, CompiledInterest]]) -> VectorScreen:
        return load_vector_screen(self.session, interests, self.embedder)

    def paper_vectors(self, papers: Sequence[Paper]) -> np.ndarray:
        docs = [paper_doc(p) for p in papers]
        return embed_papers(docs, self.embedder, DatabaseEmbeddingCache(self.session))


class BatchScreen:
    """Which stored interests have at least one candidate among the papers screened so far.

    Build it once (all stored interests), then :meth:`screen` each batch of papers; papers already
    screened are not percolated again, so overlapping batches cost only their new papers.
    """

    def __init__(self, interests: Sequence[StoredInterest], semantic: SemanticScreen | None = None) -> None:
        self.always: set[int] = set()  # interest ids the words cannot rule out
        indexed: list[tuple[str, CompiledInterest]] = []
        by_meaning: list[tuple[int, CompiledInterest]] = []
        versions: dict[int, set[tuple[int, dt.datetime]]] = defaultdict(set)
        liked: set[int] = set()
        for stored in interests:
            versions[stored.profile_id].add((stored.interest_id, stored.updated_at))
            if stored.interest.liked:
                liked.add(stored.profile_id)
            try:
                form = evidence_form(compile_interest(stored.interest))
            except InterestError:
                continue  # the ranker skips it too: it can never match
            if form is None:
                self.always.add(stored.interest_id)
            else:
                indexed.append((str(stored.interest_id), form))
                if semantic is not None:
                    by_meaning.append((stored.interest_id, form))
        self.fingerprints: dict[int, Fingerprint] = {
            pid: (frozenset(v), pid in liked) for pid, v in versions.items()
        }
        self.index = ProfileIndex(indexed)
        self.semantic = semantic
        self.vectors = semantic.load(by_meaning) if semantic is not None else None
        self.screened: set[int] = set()
        # One (interest ids, paper ids) pair of arrays per screened batch, sorted by interest id, while
        # they fit in HITS_KEPT pairs; past that only each interest's newest hit is kept (`_latest`).
        self._hits: list[tuple[np.ndarray, np.ndarray]] = []
        self._kept = 0
        self._complete = True
        vector_ids = self.vectors.ids if self.vectors is not None else np.zeros(0, dtype=np.int64)
        self._ids = np.unique(
            np.concatenate([np.array([int(i) for i in self.index.profile_ids], dtype=np.int64), vector_ids])
        )
        self._latest = np.full(len(self._ids), _NEVER, dtype=np.int64)  # microseconds of first_seen_at

    def screen(self, papers: Iterable[Paper], lexical: LexicalIndex | None = None) -> None:
        """Percolate the papers not screened yet. `lexical`: the papers' index, when built already
        (a pool's match context: its papers in the same order), used when all of them are new.

        Papers go through in blocks, so that a block's (paper, interest) matrices stay near
        PAIRS_PER_BLOCK entries whatever the number of stored interests (100,000 broad interests
        against 5,000 papers at once took 12 GB)."""
        papers = list(papers)
        fresh = [p for p in papers if p.id not in self.screened]
        if not fresh or not len(self.index):
            self.screened.update(p.id for p in fresh)
            return
        lent = lexical is not None and len(fresh) == len(papers) == len(lexical)
        block = max(1, PAIRS_PER_BLOCK // max(len(self.index), 1))
        for start in range(0, len(fresh), block):
            part = fresh[start : start + block]
            part_ids = np.array([p.id for p in part], dtype=np.int64)
            if lent and lexical is not None and block >= len(fresh):
                result = percolate(self.index, lexical.papers, lexical)
            elif lent and lexical is not None:
                result = percolate(self.index, lexical.papers[start : start + block])
            else:
                result = percolate(self.index, [analyze_paper(paper_doc(p)) for p in part])
            interest_ids = np.array(self.index.profile_ids, dtype=np.int64)[result.profile_rows]
            paper_ids = part_ids[result.paper_rows]
            if self.vectors is not None and self.semantic is not None and len(self.vectors):
                owners, rows = self.vectors.hits(self.semantic.paper_vectors(part))
                interest_ids = np.concatenate([interest_ids, owners])
                paper_ids = np.concatenate([paper_ids, part_ids[rows]])
            seen = np.array([_micros(p.first_seen_at) for p in part], dtype=np.int64)
            sorter = np.argsort(part_ids)
            rows_of = sorter[np.searchsorted(part_ids, paper_ids, sorter=sorter)]
            self._record(interest_ids, paper_ids, seen[rows_of])
        self.screened.update(p.id for p in fresh)

    def _record(self, interest_ids: np.ndarray, paper_ids: np.ndarray, seen: np.ndarray) -> None:
        if interest_ids.size:
            np.maximum.at(self._latest, np.searchsorted(self._ids, interest_ids), seen)
        if self._complete and self._kept + interest_ids.size <= HITS_KEPT:
            order = np.argsort(interest_ids, kind="stable")
            self._hits.append((interest_ids[order], paper_ids[order]))
            self._kept += interest_ids.size
        elif self._complete:
            log.info(
                "batch screen: over %d (interest, paper) pairs, keeping each interest's newest", HITS_KEPT
            )
            self._complete, self._hits, self._kept = False, [], 0

    def interest_may_match(self, interest_id: int, paper_ids: np.ndarray) -> bool:
        if interest_id in self.always:
            return True
        if not self._complete:  # pairs no longer kept: any hit at all keeps it (broader is safe)
            at = int(np.searchsorted(self._ids, interest_id))
            return at < len(self._ids) and self._ids[at] == interest_id and self._latest[at] != _NEVER
        for owners, hits in self._hits:
            lo, hi = np.searchsorted(owners, [interest_id, interest_id + 1])
            if hi > lo and np.isin(hits[lo:hi], paper_ids).any():
                return True
        return False

    def wanted_interests(self, paper_ids: np.ndarray) -> set[int]:
        """Ids of the interests that may want one of these (screened) papers."""
        if not self._complete:
            return set(self.always) | set(self._ids[self._latest != _NEVER].tolist())
        wanted = set(self.always)
        for owners, hits in self._hits:
            wanted.update(owners[np.isin(hits, paper_ids)].tolist())
        return wanted

    def wanted_since(self, first_seen_at: dt.datetime) -> set[int]:
        """Ids of the interests that may want a screened paper first seen at or after this instant:
        a pool's (its papers are every paper first seen after a window start). Exact for a pool, and
        never fewer: a hit outside the pool only makes an interest ranked."""
        return set(self.always) | set(self._ids[self._latest >= _micros(first_seen_at)].tolist())

    def may_match(self, profile: Profile, papers: Sequence[Paper], interests: Sequence[str] | None) -> bool:
        """False only when ranking `profile` over `papers` is sure to give nothing."""
        if self.fingerprints.get(profile.id) != fingerprint(profile):
            return True  # new or edited since the screen was built
        if any(p.id not in self.screened for p in papers):
            self.screen(papers)
        ids = np.array([p.id for p in papers], dtype=np.int64)
        chosen = [i for i in profile.interests if interests is None or i.name in interests]
        return any(self.interest_may_match(i.id, ids) for i in chosen)


class ScreenedRanker:
    """A digest ranker (service.digest.compose.Ranker) that skips profiles the batch screen rules out.

    Give one to the dispatcher for its lifetime (``run_dispatch(..., ranker=ScreenedRanker())``): the
    screen of all stored interests is built on the `build_after`-th call, so a few digests sent by hand
    never pay for it, then serves pass after pass, percolating only papers it has not seen, and is
    rebuilt once older than `max_age` (a stale screen is still safe: profiles edited since it was
    built are always ranked; rebuilding keeps it useful and its memory bounded). With the sentence
    embedding on, it screens by the stored interest vectors too (SemanticScreen). One thread at a time.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        build_after: int = 20,
        max_age: dt.timedelta = dt.timedelta(hours=6),
    ) -> None:
        self.settings = settings or get_settings()
        self.build_after = build_after
        self.max_age = max_age
        self.calls = 0
        self.skipped = 0
        self._screen: BatchScreen | None = None
        self._wanted: dict[tuple[int, int], set[int]] = {}  # per shared pool: interests it may interest
        self._built_at = 0.0
        self._useful = True  # the word screen, plus the vector screen when the embedding is on
        self._words_only: bool | None = None  # no sentence embedding: a pool is screened by its own index

    def screen_for(self, session: Session) -> BatchScreen:
        if self._screen is None or time.monotonic() - self._built_at > self.max_age.total_seconds():
            started = time.monotonic()
            embedder = embedder_for(self.settings)
            semantic = SemanticScreen(session, embedder) if embedder is not None else None
            self._screen = BatchScreen(load_interests(session, self.settings), semantic)
            self._wanted.clear()
            self._built_at = time.monotonic()
            log.info(
                "batch screen built: %d interests indexed, %d always ranked, in %.1f s",
                len(self._screen.index),
                len(self._screen.always),
                self._built_at - started,
            )
        if self._screen.semantic is not None:
            self._screen.semantic.session = session  # paper vectors are read in the caller's session
        return self._screen

    def rules_out(
        self, session: Session, profile: Profile, papers: Sequence[Paper], interests: Sequence[str] | None
    ) -> bool:
        """True when ranking `profile` over `papers` is sure to give nothing (the ranker is skipped)."""
        self.calls += 1
        screened = self._useful and bool(papers) and self.calls >= self.build_after
        if screened and not self.screen_for(session).may_match(profile, papers, interests):
            self.skipped += 1
            return True
        return False

    def rules_out_shared(
        self,
        session: Session,
        profile: Profile,
        papers: Sequence[Paper],
        interests: Sequence[str] | None,
        pool: tuple[int, int],
        lexical: LexicalIndex | None = None,
        reached: Mapping[str, bool] | None = None,
    ) -> bool:
        """rules_out for profiles drawn from one shared pool (`pool` names it, e.g. first id and size).

        Given the pool's index (`lexical`), and with the sentence embedding on which interest texts
        some pool paper reaches (`reached`), each profile is screened against the pool alone
        (may_want_from): nothing is built over all stored interests. Otherwise the interests any pool
        paper may interest are found once per pool by the batch screen; each profile is then a set
        lookup. Papers a subscription already got are still counted: it only rules out less.
        """
        self.calls += 1
        if lexical is not None and papers and (reached is not None or self._by_words_only()):
            if may_want_from(profile, interests, lexical, self.settings, reached):
                return False
            self.skipped += 1
            return True
        if not (self._useful and papers and self.calls >= self.build_after):
            return False
        screen = self.screen_for(session)
        wanted = self._wanted.get(pool)
        if wanted is None:
            screen.screen(papers, lexical)
            wanted = self._wanted[pool] = screen.wanted_since(min(p.first_seen_at for p in papers))
        if screen.fingerprints.get(profile.id) != fingerprint(profile):
            return False
        if any(i.id in wanted for i in profile.interests if interests is None or i.name in interests):
            return False
        self.skipped += 1
        return True

    def _by_words_only(self) -> bool:
        if self._words_only is None:
            self._words_only = embedder_for(self.settings) is None
        return self._words_only

    def __call__(
        self, session: Session, profile: Profile, papers: Sequence[Paper], *, interests: list[str] | None
    ) -> list[DigestItem]:
        if self.rules_out(session, profile, papers, interests):
            return []
        return rank_papers(session, profile, papers, interests=interests, settings=self.settings)
