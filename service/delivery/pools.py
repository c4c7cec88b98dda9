"""Match the pools: compose a batch of due digests, loading and indexing each pool of papers once.

A subscription's candidates are the papers first seen after its window start (its last digest, or the
lookback) that no digest to its inbox held. Ordered by first_seen_at, the papers new for a subscription
are a suffix of the pass's papers, so subscriptions whose window starts fall between the same two
papers share one pool: daily subscribers almost all share one. For each pool the papers are loaded
once and one match context is built; each profile is then ranked against it (the context's
statistics come from the whole pool, the results only from the subscription's own candidates).

What does not depend on the interest is computed once per pool and kept in the context: the
papers' analysis and index (lent to the batch screen too), each word's BM25F column and filter
mask, the neighbour graph and each paper's propagated column (a profile's pseudo-relevance
feedback is the sum of its top papers' columns), and with the sentence embedding the interests'
stored vectors. A subscription's candidates are a view of the pool (service.digest.compose.
Candidates) handed to the matcher as context rows, and only the papers the digest's cut-off keeps
are explained in full.

The per-subscription path (service.digest.compose.compose_digest) loaded every candidate paper from
the database and built, or looked up by hashing every paper's text, a match context per digest.

A profile whose seed papers and feedback are all pool papers ranks against the pool's context like
any other; one that reads a reference paper outside the pool, which changes the context's statistics
and graph, is ranked on its own (service.digest.rank.rank_papers), as before. The batch screen
(service.matching.batch) skips profiles that cannot want any candidate.

`PoolScorer` is the one interface a scorer plugs into: lexical and embedding ranking through the
shared MatchContext today; a stored per-interest vector scorer can replace it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, Engine, Select, select
from sqlalchemy.orm import Session, aliased, selectinload

from service.config import Settings
from service.delivery.metrics import RANK_SECONDS
from service.digest.compose import Candidates, Ranker, build_digest, choose_items, window_starts
from service.digest.model import Digest, DigestItem
from service.digest.rank import (
    DatabaseEmbeddingCache,
    embedder_for,
    paper_doc,
    rank_in_context,
    rank_papers,
    to_interest,
)
from service.interest_vectors import text_vectors
from service.matching import MatchContext
from service.matching.batch import ScreenedRanker
from service.matching.dedup import remember_duplicates
from service.matching.diffusion import MIN_POOL
from service.matching.interests import CompiledInterest, InterestError, compile_interest
from service.matching.one_thread import one_blas_thread
from service.matching.ranking import SEMANTIC_EVIDENCE, CandidateRows
from service.matching.vector_screen import MARGIN
from service.models import DeliveryPaper, Paper, Profile, Subscription
from service.reader_models import model_for

POOLS_KEPT = 4  # match contexts kept per pass (a pool per distinct window; most passes have one)
# A pool paper this close to an interest's text may be sent by meaning (the vector screen's floor).
SCREEN_FLOOR = SEMANTIC_EVIDENCE - MARGIN


class PoolScorer(Protocol):
    """Ranks one profile's interests against candidates drawn from a shared pool, best first."""

    def __call__(
        self,
        session: Session,
        profile: Profile,
        candidates: Sequence[Paper],
        interests: Sequence[str] | None,
        pool: Pool,
        limit: int,
    ) -> list[DigestItem]: ...


class Pool:
    """The papers first seen after one window start, with their match context built on first use."""

    def __init__(self, papers: Sequence[Paper], settings: Settings) -> None:
        self.papers = list(papers)
        self.settings = settings
        self.by_id: dict[int, Paper] = {p.id: p for p in self.papers}
        self.by_key: dict[str, Paper] = {str(p.id): p for p in self.papers}  # as the matcher names them
        self._context: MatchContext | None = None
        self._all_rows: CandidateRows | None = None
        self.build_seconds = 0.0
        # With the sentence embedding: interest text -> some pool paper is in reach by meaning, for
        # the subscriptions being matched (remember_interest_vectors); None without it.
        self.reached: dict[str, bool] | None = None

    def context(self, session: Session) -> MatchContext:
        if self._context is None:
            started = time.perf_counter()
            embedder = embedder_for(self.settings)
            self._context = MatchContext(
                [paper_doc(p) for p in self.papers],
                embedder=embedder,
                cache=ShortTransactionCache(session.get_bind()) if embedder is not None else None,
            )
            if len(self.papers) >= MIN_POOL:
                self._context.graph.remember_spread()  # profile after profile spreads from the same papers
                remember_duplicates(self._context)  # and meets the same near-duplicate pairs
                if embedder is not None:
                    self._context.remember_paper_similarities()  # and feeds back the same top papers
            self.build_seconds = time.perf_counter() - started
        return self._context

    def remember_interest_vectors(self, session: Session, subscriptions: Sequence[Subscription]) -> None:
        """With the sentence embedding on: the subscriptions' interest vectors (service/
        interest_vectors.py; missing ones are embedded in one batch and stored) go into the context,
        so that ranking them does not run the model once per interest; their cosines with the pool's
        papers are one matrix product for the batch, kept for ranking them, and `reached` says for
        each interest text whether some pool paper is close enough to be sent by meaning (the
        screen's half by meaning)."""
        self.reached = None
        if embedder_for(self.settings) is None or not self.papers:
            return
        context = self.context(session)
        assert context.embedder is not None and context.embeddings is not None
        interests: list[tuple[int, CompiledInterest]] = []
        for sub in subscriptions:
            for row in sub.profile.interests:
                try:
                    interests.append((row.id, compile_interest(to_interest(row, [], [], self.settings))))
                except InterestError:
                    continue  # the ranker skips it with a warning
        vectors = text_vectors(session, interests, context.embedder)
        context.remember_text_vectors(vectors)
        texts = list(vectors)
        reach = (context.remember_text_similarities(texts) >= SCREEN_FLOOR).any(axis=1)
        self.reached = dict(zip(texts, reach.tolist(), strict=True))

    def candidates(self, held: AbstractSet[int]) -> Candidates:
        """The pool's papers but those a subscription's inbox already holds."""
        return Candidates(self.papers, self.by_id, held)

    def candidate_rows(self, session: Session, candidates: Candidates) -> CandidateRows:
        """The candidates as rows of the pool's context (papers are its rows, in pool order)."""
        context = self.context(session)
        if self._all_rows is None:
            self._all_rows = CandidateRows(context, np.arange(len(self.papers)))
        if not candidates.left_out:
            return self._all_rows
        held = np.array([context.row[str(i)] for i in candidates.left_out], dtype=np.int64)
        return CandidateRows(context, np.setdiff1d(self._all_rows.rows, held))


class ShortTransactionCache:
    """rank.DatabaseEmbeddingCache in short transactions of its own. A batch is composed in one long
    read; on SQLite a write at its end (new paper vectors) would lose to any writer in between (the
    ingest job), so the vectors are read and written apart from it."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        with Session(self.bind) as session:
            return DatabaseEmbeddingCache(session).get_many(model_id, keys)

    def put_many(self, model_id: str, vectors: dict[str, np.ndarray]) -> None:
        with Session(self.bind) as session, session.begin():
            DatabaseEmbeddingCache(session).put_many(model_id, vectors)


def context_scorer(
    session: Session,
    profile: Profile,
    candidates: Sequence[Paper],
    interests: Sequence[str] | None,
    pool: Pool,
    limit: int,
) -> list[DigestItem]:
    """The default scorer: rank_papers' ranking against the pool's shared context, `limit` per interest."""
    rows = [i for i in profile.interests if interests is None or i.name in interests]
    if not candidates or not rows:
        return []
    liked = [str(f.paper_id) for f in profile.feedback if f.relevant]
    disliked = [str(f.paper_id) for f in profile.feedback if not f.relevant]
    references = {str(seed) for row in rows for seed in row.seeds or ()} | {*liked, *disliked}
    if not references <= pool.by_key.keys():
        # A reference paper outside the pool changes the context's statistics and graph: ranked on
        # its own context, as before.
        names = list(interests) if interests is not None else None
        return rank_papers(session, profile, list(candidates), interests=names, settings=pool.settings)
    if not isinstance(candidates, Candidates):
        candidates = Candidates(candidates, {p.id: p for p in candidates}, set())
    embedder = embedder_for(pool.settings) if references else None
    return rank_in_context(
        pool.context(session),
        profile.name,
        rows,
        candidates,
        liked,
        disliked,
        pool.settings,
        limit,
        model=model_for(session, profile, embedder, pool.settings) if embedder is not None else None,
        candidates=pool.candidate_rows(session, candidates),
        lookup=pool.by_key,
    )


class PoolMatcher:
    """Composes due digests batch by batch for one dispatch pass (one thread at a time)."""

    def __init__(
        self,
        settings: Settings,
        now: dt.datetime,
        *,
        screen: ScreenedRanker | None = None,
        scorer: PoolScorer = context_scorer,
    ) -> None:
        self.settings = settings
        self.now = now
        self.screen = screen
        self.scorer = scorer
        self.papers: list[Paper] = []  # ordered by (first_seen_at, id)
        self.seen_at: list[dt.datetime] = []
        self.loaded_after: dt.datetime | None = None
        self.pools: OrderedDict[int, Pool] = OrderedDict()
        self.rank_seconds = 0.0

    def compose(
        self, session: Session, subscriptions: Sequence[Subscription], periods: dict[int, str]
    ) -> dict[int, Digest]:
        """The digest of each subscription for its period (reads only, like compose_digest)."""
        chosen = self.choose(session, subscriptions)
        return {
            sub.id: build_digest(
                sub,
                periods[sub.id],
                chosen[sub.id][0],
                now=self.now,
                settings=self.settings,
                stats=chosen[sub.id][1],
            )
            for sub in subscriptions
        }

    @one_blas_thread()
    def choose(
        self, session: Session, subscriptions: Sequence[Subscription]
    ) -> dict[int, tuple[list[DigestItem], dict[str, Any]]]:
        """Each subscription's digest items and the figures of its choice (candidates, best score),
        without the digest's signed links: a match task hands items on, and the deliver task that
        sends them builds the digest."""
        if not subscriptions:
            return {}
        ids = [s.id for s in subscriptions]
        starts = window_starts(session, ids, now=self.now, settings=self.settings)
        earliest = min(starts.values())
        self._load_after(session, earliest)
        held = held_papers(session, ids, after=earliest)
        chosen: dict[int, tuple[list[DigestItem], dict[str, Any]]] = {}
        started = time.perf_counter()
        places = {sub.id: bisect.bisect_right(self.seen_at, starts[sub.id]) for sub in subscriptions}
        groups: dict[int, list[Subscription]] = defaultdict(list)
        for sub in subscriptions:
            groups[places[sub.id]].append(sub)
        for at, group in groups.items():
            if at < len(self.papers):
                self._pool(at).remember_interest_vectors(session, group)
        for sub in subscriptions:
            at = places[sub.id]
            pool = self._pool(at)
            candidates = pool.candidates(held.get(sub.id, set()))
            stats: dict[str, Any] = {}  # for the "why no email" record
            items = choose_items(
                session, sub, candidates, self._ranker(pool, (at, len(pool.papers)), sub.max_papers), stats
            )
            chosen[sub.id] = (items, stats)
        took = time.perf_counter() - started
        self.rank_seconds += took
        RANK_SECONDS.observe(took)
        return chosen

    def _ranker(self, pool: Pool, key: tuple[int, int], limit: int) -> Ranker:
        """A compose Ranker for one subscription of `pool`: the screen sees the whole pool once, the
        scorer only the subscription's candidates."""

        def ranker(
            session: Session, profile: Profile, papers: Sequence[Paper], *, interests: list[str] | None
        ) -> list[DigestItem]:
            screen = self.screen
            lexical = pool.context(session).index if pool.papers else None
            if screen is not None and screen.rules_out_shared(
                session, profile, pool.papers, interests, key, lexical, pool.reached
            ):
                return []
            return self.scorer(session, profile, papers, interests, pool, limit)

        return ranker

    def _load_after(self, session: Session, start: dt.datetime) -> None:
        """Make sure every paper first seen in (start, now] is loaded, fetching only what is missing."""
        if self.loaded_after is not None and start >= self.loaded_after:
            return
        upper = self.loaded_after if self.loaded_after is not None else self.now
        older = list(
            session.scalars(
                select(Paper)
                .where(Paper.first_seen_at > start, Paper.first_seen_at <= upper)
                .order_by(Paper.first_seen_at, Paper.id)
            )
        )
        self.papers = older + self.papers
        self.seen_at = [p.first_seen_at for p in self.papers]
        self.loaded_after = start
        self.pools.clear()  # indexes moved

    def _pool(self, at: int) -> Pool:
        pool = self.pools.get(at)
        if pool is None:
            pool = self.pools[at] = Pool(self.papers[at:], self.settings)
            while len(self.pools) > POOLS_KEPT:
                self.pools.popitem(last=False)
        self.pools.move_to_end(at)
        return pool


def to_compose(ids: Collection[int]) -> Select[tuple[Subscription]]:
    """The subscriptions `ids` with what composing their digests reads (subscriber, interests, feedback)."""
    return (
        select(Subscription)
        .where(Subscription.id.in_(ids))
        .options(
            selectinload(Subscription.subscriber),
            selectinload(Subscription.profile).selectinload(Profile.interests),
            selectinload(Subscription.profile).selectinload(Profile.feedback),
        )
    )


def held_papers(
    session: Session, subscription_ids: Sequence[int], *, after: dt.datetime
) -> dict[int, set[int]]:
    """The papers first seen after `after` that a digest to each subscription's inbox already holds
    (compose.candidate_papers: every subscription of the same channel and address counts)."""
    own, inbox = aliased(Subscription), aliased(Subscription)
    held: dict[int, set[int]] = defaultdict(set)
    rows = session.execute(
        select(own.id, DeliveryPaper.paper_id)
        .join(inbox, (inbox.channel == own.channel) & (inbox.address == own.address))
        .join(DeliveryPaper, DeliveryPaper.subscription_id == inbox.id)
        .where(own.id.in_(subscription_ids), DeliveryPaper.paper_seen_at > after)
    )
    for subscription_id, paper_id in rows:
        held[subscription_id].add(paper_id)
    return held
