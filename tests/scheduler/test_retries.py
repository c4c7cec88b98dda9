"""Where a retry waits with workers: a short one is its worker's countdown, a long one the clock's."""

from __future__ import annotations

import datetime as dt

import pytest
from kombu.exceptions import OperationalError
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.delivery.retries import EnqueuedRetries, retries_for_the_clock, short_retries
from service.models import Delivery, Subscription
from tests.digest.helpers import NOW, add_subscription
from tests.smtp_server import free_port

PERIOD = "2026-11-23"


def _retry(session: Session, email: str, failed_at: dt.datetime, delay_s: float) -> int:
    sid = add_subscription(session, email)
    session.add(
        Delivery(
            subscription_id=sid,
            period=PERIOD,
            status="retry",
            attempts=1,
            created_at=failed_at,
            updated_at=failed_at,  # marked 'retry' then, due delay_s later
            next_attempt_at=failed_at + dt.timedelta(seconds=delay_s),
        )
    )
    session.flush()
    return sid


def test_the_clock_leaves_a_short_retry_to_its_worker_until_it_is_overdue(db: Session) -> None:
    settings = Settings(delivery_short_retry_s=60)
    short = _retry(db, "short@example.org", NOW, 30)
    long = _retry(db, "long@example.org", NOW, 600)

    def at(seconds: float) -> dt.datetime:
        return NOW + dt.timedelta(seconds=seconds)

    assert retries_for_the_clock(db, at(30), settings) == []  # due, but its worker retries it
    assert retries_for_the_clock(db, at(89), settings) == []
    # Overdue by DELIVERY_SHORT_RETRY_S: the countdown was lost, so the clock takes it.
    assert retries_for_the_clock(db, at(90), settings) == [(short, PERIOD, at(30))]
    assert retries_for_the_clock(db, at(600), settings) == [(short, PERIOD, at(30)), (long, PERIOD, at(600))]


def test_a_worker_retries_itself_only_what_is_short_and_still_ahead(db: Session) -> None:
    settings = Settings(delivery_short_retry_s=60)
    short = _retry(db, "short@example.org", NOW, 30)
    long = _retry(db, "long@example.org", NOW, 600)
    other = _retry(db, "other@example.org", NOW, 20)
    keys = [(short, PERIOD), (long, PERIOD)]

    assert short_retries(db, keys, NOW, settings) == [(short, PERIOD, NOW + dt.timedelta(seconds=30))]
    # Already due when the batch ends: this run did not retry it (a paused subscription), so no
    # countdown again and again; the clock has it.
    assert short_retries(db, keys, NOW + dt.timedelta(seconds=30), settings) == []
    assert other not in {sid for sid, _, _ in short_retries(db, keys, NOW, settings)}


def test_the_clock_enqueues_each_retry_attempt_once() -> None:
    queued = EnqueuedRetries(hold=dt.timedelta(hours=1))
    first, second = (1, PERIOD, NOW), (2, PERIOD, NOW)
    assert queued.fresh([first, second], NOW) == [first, second]
    queued.add([first], NOW)  # the second could not be published
    later = NOW + dt.timedelta(seconds=15)
    assert queued.fresh([first, second], later) == [second]  # the first waits on the queue
    # It failed again: a new attempt, due later, is enqueued when it comes.
    again = (1, PERIOD, NOW + dt.timedelta(minutes=4))
    assert queued.fresh([again], NOW + dt.timedelta(minutes=4)) == [again]
    queued.add([again], NOW + dt.timedelta(minutes=4))
    # An attempt still due after an hour on the queue was lost there: enqueued again.
    assert queued.fresh([again], NOW + dt.timedelta(minutes=64)) == [again]


def test_a_pass_that_cannot_reach_the_broker_gives_its_claims_back(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed but never enqueued, they would wait out the hour of a queued claim; due again at once."""
    from service.delivery.tasks import configure, enqueue_pass

    with Session(committed_engine) as s, s.begin():
        ids = [add_subscription(s, f"r{n}@example.org") for n in range(3)]
        s.execute(update(Subscription).values(next_digest_at=NOW))
    settings = Settings(broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//", semantic=False)
    configure(settings)
    with pytest.raises(OperationalError):  # kombu's, after its publish retries
        enqueue_pass(committed_engine, settings, NOW + dt.timedelta(minutes=1))
    with Session(committed_engine) as s:
        nexts = s.scalars(select(Subscription.next_digest_at).where(Subscription.id.in_(ids))).all()
    assert nexts == [NOW] * len(ids)


class _Killed(BaseException):
    """kill -9 of the clock: nothing after it runs (not an error the pass could handle)."""


def test_a_clock_killed_between_claiming_and_publishing_leaves_the_batch_to_the_next_pass(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.delivery import tasks

    with Session(committed_engine) as s, s.begin():
        ids = [add_subscription(s, f"k{n}@example.org") for n in range(3)]
        s.execute(update(Subscription).values(next_digest_at=NOW))
    settings = Settings(heartbeat_s=1, semantic=False)  # dead after 3 s without a beat
    published: list[list[int]] = []

    def killed(*_args: object, **_kwargs: object) -> None:
        raise _Killed

    def publish(*, args: tuple[list[tuple[int, str]], str, str], queue: str) -> None:
        published.append([sid for sid, _ in args[0]])

    monkeypatch.setattr(tasks.match_task, "apply_async", killed)
    with pytest.raises(_Killed):
        tasks.enqueue_pass(committed_engine, settings, NOW)
    monkeypatch.setattr(tasks.match_task, "apply_async", publish)
    tasks.enqueue_pass(committed_engine, settings, NOW + dt.timedelta(seconds=2))
    assert published == []  # its heartbeat may still be valid: a claim that young is left alone
    tasks.enqueue_pass(committed_engine, settings, NOW + dt.timedelta(seconds=5))
    assert [sorted(batch) for batch in published] == [sorted(ids)]
    with Session(committed_engine) as s:  # handed over to the broker: no one's death frees them now
        owners = s.scalars(select(Subscription.claimed_by).where(Subscription.id.in_(ids))).all()
    assert owners == [None] * len(ids)
