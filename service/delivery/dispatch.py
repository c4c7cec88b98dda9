"""One dispatch pass: due subscriptions -> the period due -> service.delivery -> next_digest_at advanced.

Timing is data (DESIGN convention 8). `subscriptions.next_digest_at` holds when the next digest is due;
a pass takes the subscriptions whose time has come batch by batch and claims them with a conditional
UPDATE (service.delivery.claims), so two dispatchers never work on the same subscription at once.
The batch's digests are composed together, each pool of papers matched once (service.delivery.pools).
The winner delivers the latest period that has passed (service.delivery.schedule: missed periods
coalesce into one), then moves next_digest_at to the following slot (one UPDATE per batch). If it dies
in between, its claim lapses after CLAIM and the next pass delivers the same period, which
service.delivery makes a no-op if the digest went out: deliveries are unique per (subscription,
period), and that row is claimed before anything is sent.

A digest that failed transiently is a 'retry' delivery row with next_attempt_at; each pass also
re-delivers those that are due (all of them, batch by batch), until service.delivery's attempt limit
marks them failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine, update

from service import why
from service.channels.base import Channel
from service.clock import Clock
from service.config import Settings
from service.db import session_factory
from service.delivery.attempt import ChannelPool, DeliveryOutcome, not_deliverable, retries_due
from service.delivery.batch import Planned, deliver_batch
from service.delivery.claims import (
    BATCH,
    CLAIM,
    advance,
    claim,
    claim_many,
    due_subscriptions,
    schedule_new,
    set_claimed,
)
from service.delivery.metrics import OUTCOMES, PASS_SECONDS
from service.delivery.recovery import Heartbeat, recover
from service.delivery.schedule import Schedule, ScheduleError, latest_slot, next_send_at
from service.digest.compose import Ranker
from service.digest.model import Digest
from service.models import Subscription
from service.oplog import log_event

if TYPE_CHECKING:
    from service.delivery.pools import PoolMatcher

__all__ = ["CLAIM", "DispatchReport", "advance", "claim", "due_subscriptions", "run_dispatch", "schedule_new"]

log = logging.getLogger("paperboy.dispatch")


@dataclass
class DispatchReport:
    """What one pass did."""

    scheduled: int = 0  # subscriptions given their first next_digest_at
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    lost_claims: int = 0  # due subscriptions another instance claimed first
    errors: list[str] = field(default_factory=list)  # unexpected errors (a bug or the database)
    stopped: bool = False  # a stop was requested before the pass ended
    screened_out: int = 0  # profiles the batch screen spared ranking (they could match nothing)
    rank_seconds: float = 0.0  # time spent composing digests by pool

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> bool:
        """An unexpected error, or a digest whose last attempt in this pass did not go out.

        A digest that went to 'retry' and was then sent by the same pass's retries counts as sent.
        """
        last = {(o.subscription_id, o.period): o.status for o in self.outcomes}
        return bool(self.errors) or any(status in ("failed", "retry") for status in last.values())


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
    matcher: PoolMatcher | None = None
    started: dt.datetime | None = None
    notes: list[tuple[int, why.Note]] = field(default_factory=list)  # "why no email", written per batch

    def write_notes(self) -> None:
        notes, self.notes = self.notes, []
        try:
            why.record(
                self.engine,
                notes,
                pass_at=self.started or self.clock.now(),
                at=self.clock.now(),
                instance=self.instance,
            )
        except Exception:  # the notes explain; they must never stop deliveries
            log.exception("could not record %d dispatch notes", len(notes))

    def stop_requested(self) -> bool:
        """SIGTERM: no new work; what is in flight has finished."""
        if self.should_stop():
            self.report.stopped = True
        return self.report.stopped

    def batch(self, planned: list[Planned], now: dt.datetime) -> Iterator[tuple[Planned, bool]]:
        """deliver_batch() the periods, each logged and reported; False: it failed unexpectedly."""
        for plan, result in deliver_batch(
            self.engine,
            planned,
            channel=self.pool,
            now=now,
            settings=self.settings,
            instance=self.instance,
            ranker=self.ranker,
            should_stop=self.stop_requested,
        ):
            if isinstance(result, Exception):  # a bug or the database: the claim lapses, a later pass retries
                log.error(
                    "delivery of subscription %s for %s failed unexpectedly",
                    plan.subscription_id,
                    plan.period,
                )
                self.report.errors.append(
                    f"subscription {plan.subscription_id} {plan.period}: {type(result).__name__}: {result}"
                )
                yield plan, False
                continue
            self.report.outcomes.append(result)
            self.notes.append((plan.subscription_id, why.classify(result)))
            log_delivery(result, self.instance)
            yield plan, True


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
    """One pass: schedule new subscriptions, deliver every due digest, then every due retry.

    With no ranker, or a ScreenedRanker, digests are composed by pool (service.delivery.pools) behind
    the batch screen; any other ranker is called once per subscription, as it always was.
    """
    with (
        Heartbeat(engine, instance, now=clock.now, interval_s=settings.heartbeat_s),
        PASS_SECONDS.time(),
    ):  # our claims stay ours while we live
        return _run_pass(engine, settings, clock, instance, channel, ranker, should_stop)


def _run_pass(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    instance: str,
    channel: Channel | ChannelPool | None,
    ranker: Ranker | None,
    should_stop: Callable[[], bool],
) -> DispatchReport:
    report = DispatchReport()
    now = clock.now()
    recover(engine, settings, now)
    report.scheduled = schedule_new(engine, now)
    pool = channel if channel is not None else ChannelPool(settings)
    run = _Pass(engine, settings, clock, instance, pool, ranker, should_stop, report, started=now)
    # Loaded with the first pass, not at import: matching pulls in numpy and scipy.
    from service.delivery.pools import PoolMatcher
    from service.matching.batch import ScreenedRanker

    if ranker is None or isinstance(ranker, ScreenedRanker):
        run.matcher = PoolMatcher(settings, now, screen=ranker or ScreenedRanker(settings))
    skipped_before = run.matcher.screen.skipped if run.matcher and run.matcher.screen else 0
    try:
        _deliver_due(run)
        if not report.stopped:
            _deliver_retries(run)
    finally:
        run.write_notes()
        if run.matcher is not None and run.matcher.screen is not None:
            report.screened_out = run.matcher.screen.skipped - skipped_before
            report.rank_seconds = run.matcher.rank_seconds
        if channel is None:
            pool.close()  # our own pool: one SMTP connection for the pass, closed with it
    return report


def _deliver_due(run: _Pass) -> None:
    now = run.clock.now()
    seen: set[int] = set()
    while not run.report.stopped:
        due = [(sid, at) for sid, at in due_subscriptions(run.engine, now) if sid not in seen]
        if not due:
            return
        seen.update(sid for sid, _ in due)
        _deliver_batch(run, due, now)


def _deliver_batch(run: _Pass, due: list[tuple[int, dt.datetime]], now: dt.datetime) -> None:
    """Claim a batch, compose its digests together, deliver them one by one, advance them together."""
    until, won = claim_many(run.engine, [sid for sid, _ in due], now, owner=run.instance)
    run.report.lost_claims += len(due) - len(won)
    run.notes += [(sid, why.Note("claimed_elsewhere", None)) for sid, _ in due if sid not in won]
    due_at = {sid: at for sid, at in due if sid in won}
    plans: list[tuple[int, str, Schedule]] = []
    broken: dict[int, str] = {}
    digests: dict[int, Digest] = {}
    from service.delivery.pools import to_compose  # imported with the pass's PoolMatcher already

    with session_factory(run.engine)() as session:  # reads only: paper vectors are cached apart
        subs = session.scalars(to_compose(due_at)).all()
        by_id = {sub.id: sub for sub in subs}
        for sid in due_at:
            sub = by_id.get(sid)
            if sub is None:
                continue
            try:
                schedule = Schedule.of(sub)
            except ScheduleError as exc:  # changed since it was scheduled: flag it, stop scheduling it
                broken[sid] = f"schedule: {exc}"
                continue
            plans.append((sid, latest_slot(schedule, now).period, schedule))
        if run.matcher is not None:
            ready = [by_id[sid] for sid, _, _ in plans if not_deliverable(by_id[sid]) is None]
            digests = run.matcher.compose(session, ready, {sid: period for sid, period, _ in plans})
    _flag_broken(run.engine, until, broken)
    advanced: dict[int, dt.datetime | None] = {}
    handled = set(broken)
    schedules = {sid: schedule for sid, _, schedule in plans}
    try:
        planned = [Planned(sid, period, digests.get(sid)) for sid, period, _ in plans]
        for plan, delivered in run.batch(planned, now):
            handled.add(plan.subscription_id)
            if delivered:
                advanced[plan.subscription_id] = next_send_at(schedules[plan.subscription_id], now)
    finally:
        set_claimed(run.engine, until, advanced)
        # Claims this pass will not use go back as they were, for the next pass (or another instance).
        set_claimed(run.engine, until, {sid: at for sid, at in due_at.items() if sid not in handled})
        run.write_notes()


def _flag_broken(engine: Engine, until: dt.datetime, broken: dict[int, str]) -> None:
    if not broken:
        return
    with engine.begin() as conn:
        for subscription_id, message in broken.items():
            conn.execute(
                update(Subscription)
                .where(Subscription.id == subscription_id, Subscription.next_digest_at == until)
                .values(needs_attention=message, next_digest_at=None, claimed_by=None)
            )


def _deliver_retries(run: _Pass) -> None:
    """Every retry due, not only the first batch: a relay outage can leave thousands waiting."""
    seen: set[tuple[int, str]] = set()
    while True:
        now = run.clock.now()
        with session_factory(run.engine)() as session:
            due = [key for key in retries_due(session, now, limit=BATCH) if key not in seen]
        if not due:
            return
        seen.update(due)
        for _ in run.batch([Planned(sid, period) for sid, period in due], now):
            pass
        if run.report.stopped:
            return


def log_delivery(outcome: DeliveryOutcome, instance: str) -> None:
    """The one structured line per delivery (a skip is logged only at debug level), and its count."""
    OUTCOMES.labels(outcome.status).inc()
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
