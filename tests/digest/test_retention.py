"""Bounded delivery_papers: pruning moves rows no pass can need, and no reader sees a difference."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.archive import digest_items, past_digests, search_sent
from service.channels.feed import build_feed, feed_version
from service.config import Settings
from service.delivery.pools import held_papers
from service.delivery.retention import horizon, prune
from service.digest.compose import MAX_WINDOW, candidate_papers, window_start, window_starts
from service.models import ArchivedPaper, Delivery, DeliveryPaper, Paper, Subscription
from service.reader_models import _history
from service.web.admin import get_delivery
from tests.digest.helpers import NOW, add_paper, add_subscription

DAY = dt.timedelta(days=1)
SETTINGS = Settings(_env_file=None, digest_lookback_days=7)  # type: ignore[call-arg]


def _deliver(
    session: Session, sub_id: int, created: dt.datetime, papers: list[Paper], status: str = "sent"
) -> Delivery:
    delivery = Delivery(
        subscription_id=sub_id,
        period=created.date().isoformat(),
        status=status,
        created_at=created,
        sent_at=created if status == "sent" else None,
    )
    session.add(delivery)
    session.flush()
    for rank, paper in enumerate(papers, start=1):
        reason = {"title": paper.title, "why": f"why {paper.key}", "url": paper.url, "authors": ["A. Author"]}
        # paper_seen_at left out: the column default copies the paper's first_seen_at.
        session.add(
            DeliveryPaper(
                delivery_id=delivery.id,
                subscription_id=sub_id,
                paper_id=paper.id,
                rank=rank,
                score=1.0 / rank,
                reason=reason,
            )
        )
    session.flush()
    return delivery


def _history_of(session: Session, sub_id: int) -> list[Delivery]:
    """Sent digests spanning the horizon: all-old, straddling, recent; plus an old retry."""
    papers = {
        name: add_paper(
            session, f"arxiv:2611.{n:05d}", f"Sparse attention {name}", "abstract", seen=NOW - age
        )
        for n, (name, age) in enumerate(
            [
                ("old-a", 60 * DAY),
                ("old-b", 59 * DAY),
                ("old-c", 40 * DAY),
                ("mid", 20 * DAY),
                ("new", 2 * DAY),
                ("retry-old", 45 * DAY),
                ("fresh", 3 * dt.timedelta(hours=1)),
            ]
        )
    }
    return [
        _deliver(session, sub_id, NOW - 58 * DAY, [papers["old-a"], papers["old-b"]]),
        _deliver(session, sub_id, NOW - 19 * DAY, [papers["mid"], papers["old-c"]]),
        _deliver(session, sub_id, NOW - DAY, [papers["new"]]),
        _deliver(session, sub_id, NOW - 44 * DAY, [papers["retry-old"]], status="retry"),
    ]


def _what_readers_see(session: Session, sub: Subscription, deliveries: list[Delivery]) -> dict[str, object]:
    return {
        "archive": past_digests(session, sub.id),
        "pages": [digest_items(session, d) for d in deliveries],
        "search": search_sent(session, sub.id, "sparse attention"),
        "feed": build_feed(session, sub, "atom", self_url="http://x/feed", home_url="http://x/"),
        "feed_version": feed_version(session, sub, "atom"),
        "reader_history": _history(session, sub.profile),
        "admin": [get_delivery(session, d.id) for d in deliveries],
    }


def test_prune_moves_old_rows_of_sent_digests_and_readers_see_the_same(db: Session) -> None:
    sub_id = add_subscription(db, "ada@example.org", "sparse attention")
    sub = db.get(Subscription, sub_id)
    assert sub is not None
    deliveries = _history_of(db, sub_id)
    before = _what_readers_see(db, sub, deliveries)
    candidates_before = [p.id for p in candidate_papers(db, sub, now=NOW, settings=SETTINGS)]

    result = prune(db, now=NOW, batch=2)  # several batches

    assert result.horizon == NOW - MAX_WINDOW - DAY
    assert result.moved == 3  # old-a, old-b and the straddling digest's old-c; the retry keeps its row
    # Kept: the papers still inside the window, and the retry's (its digest is rebuilt from them).
    hot = sorted(db.scalars(select(DeliveryPaper.paper_seen_at)), reverse=True)
    assert hot == [NOW - 2 * DAY, NOW - 20 * DAY, NOW - 45 * DAY]
    assert db.scalar(select(func.count()).select_from(ArchivedPaper)) == 3
    db.expire_all()
    assert _what_readers_see(db, sub, deliveries) == before
    assert [p.id for p in candidate_papers(db, sub, now=NOW, settings=SETTINGS)] == candidates_before
    assert prune(db, now=NOW).moved == 0  # nothing left to move


def test_never_twice_still_holds_for_every_paper_still_a_candidate(db: Session) -> None:
    """Every paper a later pass can offer is either unsent or still held in delivery_papers."""
    sub_id = add_subscription(db, "ada@example.org", "sparse attention")
    twin_id = add_subscription(db, "ada@example.org", "graph networks")  # same inbox
    sub = db.get(Subscription, sub_id)
    assert sub is not None
    _history_of(db, sub_id)
    later = NOW + 2 * DAY
    prune(db, now=later)
    sent = set(db.scalars(select(DeliveryPaper.paper_id))) | set(db.scalars(select(ArchivedPaper.paper_id)))
    floor = later - MAX_WINDOW
    still_candidates = set(db.scalars(select(Paper.id).where(Paper.first_seen_at > floor)))
    held_hot = set(db.scalars(select(DeliveryPaper.paper_id)))
    assert sent & still_candidates <= held_hot
    offered = {p.id for p in candidate_papers(db, sub, now=later, settings=SETTINGS)}
    assert not offered & sent
    held = held_papers(db, [sub_id, twin_id], after=floor)
    assert held[twin_id] == held[sub_id] == sent & still_candidates


def test_prune_batch_must_be_positive(db: Session) -> None:
    with pytest.raises(ValueError, match="prune batch: must be at least 1, not 0"):
        prune(db, now=NOW, batch=0)


def test_paper_seen_at_is_the_papers_first_seen_at_when_left_out(db: Session) -> None:
    sub_id = add_subscription(db)
    paper = add_paper(db, "arxiv:2611.00001", "A paper", seen=NOW - 5 * DAY)
    _deliver(db, sub_id, NOW, [paper])
    assert db.scalar(select(DeliveryPaper.paper_seen_at)) == NOW - 5 * DAY
    assert horizon(NOW) < NOW - MAX_WINDOW


def test_window_starts_read_only_the_window_yet_keep_their_meaning(db: Session) -> None:
    recent, paused, new, failed_only = (add_subscription(db, f"r{n}@example.org") for n in range(4))
    p = add_paper(db, "arxiv:2611.00002", "A paper", seen=NOW - 50 * DAY)
    _deliver(db, recent, NOW - 40 * DAY, [])
    _deliver(db, recent, NOW - 2 * DAY, [])
    _deliver(db, paused, NOW - 40 * DAY, [p])  # longer ago than MAX_WINDOW: the window is the floor
    _deliver(db, failed_only, NOW - DAY, [], status="failed")
    starts = window_starts(db, [recent, paused, new, failed_only], now=NOW, settings=SETTINGS)
    lookback = NOW - dt.timedelta(days=SETTINGS.digest_lookback_days)
    assert starts == {recent: NOW - 2 * DAY, paused: NOW - MAX_WINDOW, new: lookback, failed_only: lookback}
    sub = db.get(Subscription, paused)
    assert sub is not None
    assert window_start(db, sub, now=NOW, settings=SETTINGS) == NOW - MAX_WINDOW


def test_a_paper_moved_into_a_later_window_stays_held_even_once_archived(db: Session) -> None:
    """paper_seen_at follows papers.first_seen_at (a trigger of scaletables_1), archived rows included:
    a sent paper moved into a later window is never offered again."""
    sub_id = add_subscription(db, "ada@example.org", "sparse attention")
    sub = db.get(Subscription, sub_id)
    assert sub is not None
    _history_of(db, sub_id)
    prune(db, now=NOW)
    archived = db.scalars(select(ArchivedPaper.paper_id).order_by(ArchivedPaper.id)).all()
    hot = db.scalars(select(DeliveryPaper.paper_id).order_by(DeliveryPaper.id)).all()
    moved_at = NOW + DAY / 2
    db.execute(update(Paper).where(Paper.id.in_([archived[0], hot[0]])).values(first_seen_at=moved_at))
    db.expire_all()
    rows = dict(db.execute(select(DeliveryPaper.paper_id, DeliveryPaper.paper_seen_at)).all())
    assert rows[archived[0]] == rows[hot[0]] == moved_at
    assert archived[0] not in db.scalars(select(ArchivedPaper.paper_id)).all()
    offered = {p.id for p in candidate_papers(db, sub, now=NOW + DAY, settings=SETTINGS)}
    assert not offered & {archived[0], hot[0]}
    assert held_papers(db, [sub_id], after=NOW)[sub_id] == {archived[0], hot[0]}
