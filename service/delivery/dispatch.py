"""One dispatch pass: due subscriptions -> the period due -> service.delivery -> next_digest_at advanced.

Timing is data (DESIGN convention 8). `subscriptions.next_digest_at` holds when the next digest is due;
a pass takes the subscriptions whose time has come and claims each one with a conditional UPDATE:

    UPDATE subscriptions SET next_digest_at = <now + claim> WHERE id = ? AND next_digest_at <= <now> ...

Exactly one instance's UPDATE matches (PostgreSQL re-checks the WHERE after the row lock; SQLite
serialises writers), so two dispatchers never work on the same subscription at once. The winner
delivers the latest period that has passed (service.delivery.schedule: missed periods coalesce into one), then
moves next_digest_at to the following slot. If it dies in between, its claim lapses after CLAIM and the
next pass delivers the same period, which service.delivery makes a no-op if the digest went out:
deliveries are unique per (subscription, period), and that row is claimed before anything is sent.

A digest that failed transiently is a 'retry' delivery row with next_attempt_at; each pass also
re-delivers those that are due, until service.delivery's attempt limit marks them failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, Update, select, update

from service.channels.base import Channel
from service.clock import Clock
from service.config import Settings
from service.db import session_factory
from service.delivery.attempt import ChannelPool, DeliveryOutcome, deliver, retries_due
from service.delivery.schedule import Schedule, ScheduleError, latest_slot, next_send_at
from service.digest.compose import Ranker
from service.models import Subscription
from service.oplog import log_event

log = logging.getLogger("paperboy.dispatch")

CLAIM = dt.timedelta(minutes=10)  # how long a claimed subscription is left alone if its claimer dies
BATCH = 500  # subscriptions per query; a pass keeps going until none is due


@dataclass
class DispatchReport:
    """What one pass did."""

    scheduled: int = 0  # subscriptions given their first next_digest_at
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    lost_claims: int = 0  # due subscriptions another instance claimed first
    errors: list[str] = field(default_factory=list)  # unexpected errors (a bug or the database)
    stopped: bool = False  # a stop was requested before the pass ended

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(o.status in ("failed", "retry") for o in self.outcomes)


_Stmt = TypeVar("_Stmt", Select[Any], Update)


def _active(stmt: _Stmt) -> _Stmt:
    """Only subscriptions that get digests: active and not paused."""
    return stmt.where(Subscription.status == "active", Subscription.paused.is_(False))


def schedule_new(engine: Engine, now: dt.datetime) -> int:
    """Give active subscriptions without a next_digest_at their next slot; bad schedules are flagged.

    Read first, then write each row with a conditional UPDATE in its own transaction: a transaction
    that reads and then writes could not wait for another SQLite writer (its snapshot would be stale).
    """
    with session_factory(engine)() as session:
        rows = list(
            session.scalars(_active(select(Subscription)).where(Subscription.next_digest_at.is_(None)))
        )
    done = 0
    for sub in rows:
        try:
            values = {"next_digest_at": next_send_at(Schedule.of(sub), now)}
        except ScheduleError as exc:
            if sub.needs_attention == f"schedule: {exc}":
                continue
            values = {"needs_attention": f"schedule: {exc}"}
        with engine.begin() as conn:
            changed = conn.execute(
                update(Subscription)
                .where(Subscription.id == sub.id, Subscription.next_digest_at.is_(None))
                .values(**values)
            ).rowcount
        done += changed if "next_digest_at" in values else 0
    return done


def due_subscriptions(engine: Engine, now: dt.datetime, limit: int = BATCH) -> list[tuple[int, dt.datetime]]:
    """(id, next_digest_at) of active subscriptions whose digest is due, longest waiting first."""
    with engine.connect() as conn:
        stmt = (
            _active(select(Subscription.id, Subscription.next_digest_at))
            .where(Subscription.next_digest_at <= now)
            .order_by(Subscription.next_digest_at, Subscription.id)
            .limit(limit)
        )
        return [(row.id, row.next_digest_at) for row in conn.execute(stmt)]


def claim(engine: Engine, subscription_id: int, now: dt.datetime) -> dt.datetime | None:
    """Claim a due subscription for this pass; returns the claim's expiry, or None if someone else won."""
    until = now + CLAIM
    with engine.begin() as conn:
        won = conn.execute(
            _active(update(Subscription))
            .where(Subscription.id == subscription_id, Subscription.next_digest_at <= now)
            .values(next_digest_at=until)
        ).rowcount
    return until if won == 1 else None


def advance(
    engine: Engine, subscription_id: int, claimed_until: dt.datetime, next_at: dt.datetime | None
) -> None:
    """Release our claim by setting the next slot (only if the claim is still ours)."""
    with engine.begin() as conn:
        conn.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.next_digest_at == claimed_until)
            .values(next_digest_at=next_at)
        )


@dataclass
class _Pass:
    """What every delivery of one dispatch pass shares."""

    engine: Engine
    settings: Settings
    clock: Clock
    instance: str
    pool: Channel | ChannelPool
    ranker: Ranker | None
    should_stop: Callable[[], bool]
    report: DispatchReport

    def stop_requested(self) -> bool:
        """SIGTERM: no new work; what is in flight has finished."""
        if self.should_stop():
            self.report.stopped = True
        return self.report.stopped

    def deliver(self, subscription_id: int, period: str, now: dt.datetime) -> DeliveryOutcome | None:
        """deliver() one period, logged and reported; None when it failed unexpectedly."""
        try:
            outcome = deliver(
                self.engine,
                subscription_id,
                period,
                channel=self.pool,
                now=now,
                settings=self.settings,
                instance=self.instance,
                ranker=self.ranker,
            )
        except Exception as exc:  # a bug or a database outage: the claim lapses and a later pass retries
            log.exception("delivery of subscription %s for %s failed unexpectedly", subscription_id, period)
            self.report.errors.append(f"subscription {subscription_id} {period}: {type(exc).__name__}: {exc}")
            return None
        self.report.outcomes.append(outcome)
        log_delivery(outcome, self.instance)
        return outcome


def run_dispatch(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    *,
    instance: str,
    channel: Channel | ChannelPool | None = None,
    ranker: Ranker | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DispatchReport:
    """One pass: schedule new subscriptions, deliver every due digest, then every due retry."""
    report = DispatchReport()
    now = clock.now()
    report.scheduled = schedule_new(engine, now)
    pool = channel if channel is not None else ChannelPool(settings)
    run = _Pass(engine, settings, clock, instance, pool, ranker, should_stop, report)
    try:
        _deliver_due(run)
        if not report.stopped:
            _deliver_retries(run)
    finally:
        if channel is None:
            pool.close()  # our own pool: one SMTP connection for the pass, closed with it
    return report


def _deliver_due(run: _Pass) -> None:
    now = run.clock.now()
    seen: set[int] = set()
    while True:
        due = [(sid, at) for sid, at in due_subscriptions(run.engine, now) if sid not in seen]
        if not due:
            return
        for subscription_id, _ in due:
            seen.add(subscription_id)
            if run.stop_requested():
                return
            until = claim(run.engine, subscription_id, now)
            if until is None:
                run.report.lost_claims += 1
                continue
            _deliver_claimed(run, subscription_id, until)


def _deliver_claimed(run: _Pass, subscription_id: int, until: dt.datetime) -> None:
    now = run.clock.now()
    with session_factory(run.engine)() as session:
        sub = session.get(Subscription, subscription_id)
    if sub is None:
        return
    try:
        schedule = Schedule.of(sub)
    except ScheduleError as exc:  # changed since it was scheduled: flag it, stop scheduling it
        with run.engine.begin() as conn:
            conn.execute(
                update(Subscription)
                .where(Subscription.id == subscription_id, Subscription.next_digest_at == until)
                .values(needs_attention=f"schedule: {exc}", next_digest_at=None)
            )
        return
    if run.deliver(subscription_id, latest_slot(schedule, now).period, now) is not None:
        advance(run.engine, subscription_id, until, next_send_at(schedule, now))


def _deliver_retries(run: _Pass) -> None:
    now = run.clock.now()
    with session_factory(run.engine)() as session:
        due = retries_due(session, now)
    for subscription_id, period in due:
        if run.stop_requested():
            return
        run.deliver(subscription_id, period, now)


def log_delivery(outcome: DeliveryOutcome, instance: str) -> None:
    """The one structured line per delivery (a skip is logged only at debug level)."""
    level = {"sent": logging.INFO, "empty": logging.INFO, "skipped": logging.DEBUG}.get(
        outcome.status, logging.WARNING
    )
    log_event(
        log,
        "delivery",
        level=level,
        subscription=outcome.subscription_id,
        period=outcome.period,
        status=outcome.status,
        delivery=outcome.delivery_id,
        attempts=outcome.attempts,
        papers=outcome.papers,
        message_id=outcome.message_id,
        next_attempt_at=outcome.next_attempt_at,
        error=outcome.error,
        instance=instance,
    )
