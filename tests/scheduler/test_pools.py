"""Pool matching: a batch's digests composed together, each pool of papers loaded and indexed once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_info

from service.channels.base import DeliveryError
from service.clock import ManualClock
from service.config import Settings
from service.delivery import dispatch, pools
from service.delivery.claims import schedule_new
from service.delivery.dispatch import run_dispatch
from service.delivery.pools import PoolMatcher, held_papers
from service.digest import rank as digest_rank
from service.digest.compose import choose_items, compose_digest
from service.digest.model import DigestItem
from service.digest.rank import DatabaseEmbeddingCache, paper_doc, rank_in_context
from service.matching import batch
from service.matching.batch import ScreenedRanker
from service.matching.diffusion import MIN_POOL
from service.matching.ranking import MatchContext
from service.matching.semantic import embed_papers
from service.models import Delivery, DeliveryPaper, Feedback, InterestVector, Paper, Profile, Subscription
from tests.digest.helpers import NOW, add_paper, add_subscription
from tests.matching.test_pool_ranking import WordEmbedder
from tests.scheduler.helpers import RecordingTransport, email_channel, subscribe, utc

TOPICS = [
    ("sparse attention", "Sparse attention for long documents", "We make attention sparse and fast."),
    ("graph neural networks", "Graph neural networks at scale", "Message passing over large graphs."),
    ("protein folding", "Protein folding with diffusion", "Diffusion models fold proteins."),
    ("reinforcement learning", "Offline reinforcement learning", "Policies learned from logged data."),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", semantic=False, smtp_rate_per_s=1e6)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _papers(db: Session) -> list[int]:
    ids = []
    for n in range(3):
        for _topic, title, abstract in TOPICS:
            paper = add_paper(db, f"arxiv:2611.{n}{len(ids):04d}", f"{title} {n}", f"{abstract} Part {n}.")
            ids.append(paper.id)
    return ids


def test_pool_matching_gives_the_per_subscription_digests_and_loads_the_papers_once(
    db: Session, settings: Settings
) -> None:
    paper_ids = _papers(db)
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    sids.append(add_subscription(db, "all@example.org", "sparse attention", "protein folding", max_papers=3))
    # One subscriber liked a paper: that profile reads a reference paper and is ranked on its own.
    liked = db.get_one(Subscription, sids[1])
    db.add(Feedback(profile_id=liked.profile_id, paper_id=paper_ids[1], relevant=True))
    # One already got a paper of this window in an earlier digest: never offered again.
    earlier = Delivery(
        subscription_id=sids[0], period="2026-11-22", status="sent", created_at=NOW - dt.timedelta(days=1)
    )
    db.add(earlier)
    db.flush()
    db.add(
        DeliveryPaper(delivery_id=earlier.id, subscription_id=sids[0], paper_id=paper_ids[0], rank=1, score=1)
    )
    db.flush()
    db.expire_all()
    subs = list(db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id)))

    expected = {
        sub.id: [
            (i.paper_id, i.score, i.why)
            for i in compose_digest(db, sub, "p", now=NOW, settings=settings).items
        ]
        for sub in subs
    }
    matcher = PoolMatcher(settings, NOW)
    with statements(db.get_bind()) as seen:  # type: ignore[arg-type]
        digests = matcher.compose(db, subs, {sub.id: "p" for sub in subs})
    got = {sid: [(i.paper_id, i.score, i.why) for i in d.items] for sid, d in digests.items()}

    # The pool's statistics include the paper sids[0] already got, so only its choice is compared there.
    assert {sid: v for sid, v in got.items() if sid != sids[0]} == {
        sid: v for sid, v in expected.items() if sid != sids[0]
    }
    assert [pid for pid, _, _ in got[sids[0]]] == [pid for pid, _, _ in expected[sids[0]]]
    assert all(got[sid] for sid in sids)  # every profile matched something: the comparison means something
    assert paper_ids[0] not in {pid for pid, _, _ in got[sids[0]]}
    assert len(got[sids[-1]]) == 3
    paper_loads = [s for s in seen if "FROM papers" in s and "JOIN" not in s and "delivery_papers" not in s]
    assert len(paper_loads) <= 2  # the pool once (+ the liked profile's reference paper), not once a digest
    assert len(matcher.pools) == 1


def _large_pool(db: Session) -> list[int]:
    """130 papers (past diffusion.MIN_POOL): the topics' papers with a filler word each."""
    fillers = ["solvers", "benchmarks", "datasets", "kernels", "compilers", "sensors", "robots", "markets"]
    paper_ids = []
    for n in range(130):
        _, title, abstract = TOPICS[n % len(TOPICS)]
        word = fillers[(n // len(TOPICS)) % len(fillers)]
        paper = add_paper(
            db, f"arxiv:2611.8{n:04d}", f"{title} with {word} {n}", f"{abstract} We study {word}."
        )
        paper_ids.append(paper.id)
    return paper_ids


def test_a_large_pool_ranks_each_subscription_as_a_fresh_context_of_its_papers(
    db: Session, settings: Settings
) -> None:
    """Past diffusion.MIN_POOL papers the pool's shared neighbour graph, kept columns, candidate rows
    and brief-then-complete explanations all come into play: each digest must still be the one a
    context built for that subscription alone over the same papers gives."""
    paper_ids = _large_pool(db)
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    sids.append(add_subscription(db, "two@example.org", "sparse attention", "graph neural networks solvers"))
    earlier = Delivery(
        subscription_id=sids[0], period="2026-11-22", status="sent", created_at=NOW - dt.timedelta(days=1)
    )
    db.add(earlier)
    db.flush()
    for rank, paper_id in enumerate(paper_ids[:12:4], 1):  # sids[0] already got three of its papers
        db.add(
            DeliveryPaper(
                delivery_id=earlier.id, subscription_id=sids[0], paper_id=paper_id, rank=rank, score=1
            )
        )
    db.flush()
    db.expire_all()
    subs = list(db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id)))

    matcher = PoolMatcher(settings, NOW)
    digests = matcher.compose(db, subs, {sub.id: "p" for sub in subs})
    (pool,) = matcher.pools.values()
    assert len(pool.papers) >= MIN_POOL
    held = held_papers(db, sids, after=NOW - dt.timedelta(days=2))
    for sub in subs:
        alone = MatchContext([paper_doc(p) for p in pool.papers])  # no kept columns, no shared caches
        candidates = [p for p in pool.papers if p.id not in held.get(sub.id, set())]

        def ranker(
            session: Session,
            profile: Profile,
            papers: Sequence[Paper],
            *,
            interests: list[str] | None,
            alone: MatchContext = alone,
            limit: int = sub.max_papers,
        ) -> list[DigestItem]:
            rows = [i for i in profile.interests if interests is None or i.name in interests]
            return rank_in_context(alone, profile.name, rows, list(papers), [], [], settings, limit)

        expected = choose_items(db, sub, candidates, ranker)
        got = digests[sub.id].items
        assert [(i.paper_id, i.why, i.snippet, i.matched_terms) for i in got] == [
            (i.paper_id, i.why, i.snippet, i.matched_terms) for i in expected
        ]
        assert [i.score for i in got] == pytest.approx([i.score for i in expected], abs=1e-9)
        assert got  # every subscription matched: the comparison means something
    assert not {i.paper_id for i in digests[sids[0]].items} & set(paper_ids[:12:4])


def test_schedule_new_writes_one_update_per_distinct_slot(
    committed_engine: Engine, settings: Settings
) -> None:
    for n in range(12):
        subscribe(committed_engine, f"s{n}@example.org", send_time="08:00" if n % 2 else "09:30")
    with Session(committed_engine) as s, s.begin():  # make them new again
        s.execute(Subscription.__table__.update().values(next_digest_at=None))
    with statements(committed_engine) as seen:
        assert schedule_new(committed_engine, utc(2026, 11, 23, 7, 0)) == 12
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE")]) == 2
    with Session(committed_engine) as s:
        slots = sorted({sub.next_digest_at for sub in s.scalars(select(Subscription))})
    assert slots == [utc(2026, 11, 23, 8, 0), utc(2026, 11, 23, 9, 30)]


def test_every_due_retry_is_delivered_and_a_pass_whose_retries_succeed_succeeds(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(
        update={"send_empty_digests": True, "delivery_retry_base_s": 0.0, "delivery_retry_max_s": 0.0}
    )
    monkeypatch.setattr(dispatch, "BATCH", 2)  # retries are fetched two at a time: the pass must keep going
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    for n in range(5):
        subscribe(committed_engine, f"t{n}@example.org")
    run_dispatch(
        committed_engine, settings, clock, instance="t", channel=email_channel(settings, transport, clock)
    )
    clock.advance(hours=1, minutes=1)
    transport.failures = [DeliveryError("relay down", permanent=False)] * 5
    report = run_dispatch(
        committed_engine, settings, clock, instance="t", channel=email_channel(settings, transport, clock)
    )
    assert report.count("retry") == 5 and report.count("sent") == 5  # every retry came in the same pass
    assert len(transport.sent) == 5 and len(set(transport.counts())) == 5
    assert not report.failed  # all five went out in the end


def test_the_cron_pass_screens_out_profiles_that_cannot_match(
    committed_engine: Engine, settings: Settings
) -> None:
    with Session(committed_engine) as s, s.begin():
        add_paper(s, "arxiv:2611.00001", "Sparse attention for long documents", "Attention, made sparse.")
        for n in range(24):
            add_subscription(s, f"u{n}@example.org", "sparse attention" if n == 23 else "protein folding")
        s.execute(update(Subscription).values(next_digest_at=None))  # scheduled by the test clock's pass
    clock = ManualClock(NOW - dt.timedelta(hours=2))
    transport = RecordingTransport()
    run_dispatch(
        committed_engine, settings, clock, instance="t", channel=email_channel(settings, transport, clock)
    )
    clock.set(NOW + dt.timedelta(minutes=1))
    report = run_dispatch(
        committed_engine, settings, clock, instance="t", channel=email_channel(settings, transport, clock)
    )
    assert report.count("empty") == 23 and report.count("sent") == 1
    assert report.screened_out >= 23 - 20  # the screen is built after 20 rankings, then rules out the rest


def test_a_lexical_pool_is_screened_by_its_own_index_without_the_stored_interests(
    db: Session, settings: Settings
) -> None:
    """Without the sentence embedding the pool's index says which profiles can want any of its papers:
    no screen of every stored interest is built (26 s of a worker's first task at 100,000 interests),
    and the digests are those of the unscreened matcher."""
    _papers(db)
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    sids += [add_subscription(db, f"g{n}@example.org", "galaxy rotation curves") for n in range(3)]
    db.expire_all()
    subs = list(db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id)))
    screen = ScreenedRanker(settings)
    screened = PoolMatcher(settings, NOW, screen=screen).compose(db, subs, {s.id: "p" for s in subs})
    plain = PoolMatcher(settings, NOW).compose(db, subs, {s.id: "p" for s in subs})
    assert {sid: [i.paper_id for i in d.items] for sid, d in screened.items()} == {
        sid: [i.paper_id for i in d.items] for sid, d in plain.items()
    }
    assert screen.skipped == 3 and screen._screen is None


def test_profiles_with_seeds_or_feedback_in_the_pool_rank_in_its_shared_context(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed papers and feedback among the pool's papers are rows of its context: such a profile gets the
    digest a context of the pool alone gives it, without a context of its own. A seed outside the pool
    still has its own context (rank_papers), as compose_digest ranks it."""
    paper_ids = _large_pool(db)
    old = add_paper(
        db,
        "arxiv:2401.00001",
        "Protein folding, an old view",
        "Folding proteins.",
        seen=NOW - dt.timedelta(days=90),
    )
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    subs = {s.id: s for s in db.scalars(select(Subscription).where(Subscription.id.in_(sids)))}
    first, second, third, _plain = (subs[sid].profile for sid in sids)
    first.interests[0].seeds = [paper_ids[4], paper_ids[8]]
    db.add(Feedback(profile_id=second.id, paper_id=paper_ids[5], relevant=True))
    db.add(Feedback(profile_id=second.id, paper_id=paper_ids[9], relevant=False))
    third.interests[0].seeds = [paper_ids[2], old.id]  # one seed outside the pool
    db.flush()
    db.expire_all()
    subs_list = list(
        db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id))
    )

    on_their_own: list[str] = []
    rank_alone = pools.rank_papers

    def recorded(session: Session, profile: Profile, *args: object, **kwargs: object) -> list[DigestItem]:
        on_their_own.append(profile.name)
        return rank_alone(session, profile, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pools, "rank_papers", recorded)
    matcher = PoolMatcher(settings, NOW)
    digests = matcher.compose(db, subs_list, {sub.id: "p" for sub in subs_list})
    (pool,) = matcher.pools.values()
    assert len(pool.papers) >= MIN_POOL
    assert on_their_own == [third.name]
    for sub in subs_list:
        if sub.profile_id == third.id:
            monkeypatch.setattr(pools, "rank_papers", rank_alone)
            expected = compose_digest(db, sub, "p", now=NOW, settings=settings).items
        else:
            alone = MatchContext([paper_doc(p) for p in pool.papers])
            liked = [str(f.paper_id) for f in sub.profile.feedback if f.relevant]
            disliked = [str(f.paper_id) for f in sub.profile.feedback if not f.relevant]

            def ranker(
                session: Session,
                profile: Profile,
                papers: Sequence[Paper],
                *,
                interests: list[str] | None,
                alone: MatchContext = alone,
                liked: list[str] = liked,
                disliked: list[str] = disliked,
            ) -> list[DigestItem]:
                rows = [i for i in profile.interests if interests is None or i.name in interests]
                return rank_in_context(alone, profile.name, rows, list(papers), liked, disliked, settings, 10)

            expected = choose_items(db, sub, pool.papers, ranker)
        got = digests[sub.id].items
        assert [(i.paper_id, i.why, i.snippet, i.matched_terms) for i in got] == [
            (i.paper_id, i.why, i.snippet, i.matched_terms) for i in expected
        ], sub.profile.name
        assert [i.score for i in got] == pytest.approx([i.score for i in expected], abs=1e-9)
        assert got
    assert any("resembles" in i.why for i in digests[sids[0]].items)  # the seeds did count


class CountingEmbedder(WordEmbedder):
    """The test embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().embed(texts)


def test_with_embeddings_a_pass_runs_no_model_once_paper_and_interest_vectors_are_stored(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paper vectors are cached at ingest and interest vectors stored by the screen: ranking the pass
    is matrix products, never the model once per digest or per interest."""
    embedder = CountingEmbedder()
    for module in (digest_rank, pools, batch):
        monkeypatch.setattr(module, "embedder_for", lambda _settings: embedder)
    _papers(db)
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    sids.append(add_subscription(db, "two@example.org", "sparse attention", "protein folding"))
    semantic = settings.model_copy(update={"semantic": True})
    embed_papers([paper_doc(p) for p in db.scalars(select(Paper))], embedder, DatabaseEmbeddingCache(db))
    screen = ScreenedRanker(semantic, build_after=0)
    screen.screen_for(db)  # stores every interest's vector, as the pass's first batch does
    db.flush()
    db.expire_all()
    subs = list(db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id)))
    before = embedder.texts

    digests = PoolMatcher(semantic, NOW, screen=screen).compose(db, subs, {sub.id: "p" for sub in subs})

    assert embedder.texts == before
    assert all(digests[sid].items for sid in sids)  # ranked by meaning and words: the pass did run


class FarEmbedder(CountingEmbedder):
    """CountingEmbedder with one more dimension that only texts naming a troubadour use: such an
    interest shares neither a word nor a meaning with any paper of the pool."""

    dimension = WordEmbedder.dimension + 1

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        out = np.pad(WordEmbedder().embed(texts), ((0, 0), (0, 1)))
        for row, text in enumerate(texts):
            if "troubadour" in text:
                out[row] = np.eye(self.dimension, dtype=np.float32)[-1]
        return out


def test_with_embeddings_the_pool_screens_each_profile_by_words_and_meaning_and_stores_missing_vectors(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the semantic path a pool screens each profile against its own papers (words by its index,
    meaning by one product of the batch's interest vectors with the pool's): the digests are those of
    an unscreened pass, the far profile is skipped, no screen of all stored interests is built, and
    interest vectors missing from the database are embedded once, in one batch, and stored."""
    embedder = FarEmbedder()
    for module in (digest_rank, pools, batch):
        monkeypatch.setattr(module, "embedder_for", lambda _settings: embedder)
    _papers(db)
    sids = [add_subscription(db, f"r{n}@example.org", topic) for n, (topic, _, _) in enumerate(TOPICS)]
    sids.append(add_subscription(db, "far@example.org", "troubadour songs"))
    sids.append(add_subscription(db, "two@example.org", "troubadour lyrics", "protein folding"))
    semantic = settings.model_copy(update={"semantic": True})
    embed_papers([paper_doc(p) for p in db.scalars(select(Paper))], embedder, DatabaseEmbeddingCache(db))
    db.flush()
    subs = list(db.scalars(select(Subscription).where(Subscription.id.in_(sids)).order_by(Subscription.id)))
    periods = {sub.id: "p" for sub in subs}
    before = embedder.texts

    screen = ScreenedRanker(semantic, build_after=0)
    screened = PoolMatcher(semantic, NOW, screen=screen).compose(db, subs, periods)

    assert embedder.texts - before == len(TOPICS) + 3  # each interest text once, in one batch
    assert db.scalar(select(func.count()).select_from(InterestVector)) == len(TOPICS) + 3
    assert screen.skipped == 1 and screen._screen is None
    assert screened[sids[len(TOPICS)]].items == []
    plain = PoolMatcher(semantic, NOW).compose(db, subs, periods)
    for sid in sids:
        assert [(i.paper_id, i.why) for i in screened[sid].items] == [
            (i.paper_id, i.why) for i in plain[sid].items
        ]
    assert all(screened[sid].items for sid in sids if sid != sids[len(TOPICS)])
    again = embedder.texts
    PoolMatcher(semantic, NOW, screen=ScreenedRanker(semantic, build_after=0)).compose(db, subs, periods)
    assert embedder.texts == again  # stored: the next pass runs no model


def test_a_pass_ranks_with_matrix_products_on_one_thread(db: Session, settings: Settings) -> None:
    """OpenBLAS's helper threads cost far more CPU than the small products of a pass (and hid it from
    the match stage's figure): inside compose, BLAS runs on the calling thread only."""
    _papers(db)
    add_subscription(db, "r@example.org", "sparse attention")
    subs = list(db.scalars(select(Subscription)))
    threads: list[int] = []
    outside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    def scorer(*args: object) -> list[DigestItem]:
        threads.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return []

    PoolMatcher(settings, NOW, scorer=scorer).compose(db, subs, {sub.id: "p" for sub in subs})
    assert threads and set(threads) == {1}
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == outside
