"""The pass spread over Celery workers (BROKER_URL set): the clock enqueues, workers match and deliver.

    clock (`paperboy run`, the lease holder)   schedule new subscriptions, claim due ones batch by batch,
        │                                      enqueue one `match` task per batch, and every due retry
        ├─ match task (queue `match`)          compose the batch's digests by pool (service.delivery.pools)
        │     └─ deliver tasks                 one per small batch, on the channel's queue (`email`, `slack`)
        └─ deliver task                        claim -> render -> send -> mark, writes batched
                                               (service.delivery.batch), then advance next_digest_at
                                               if the claim is still ours

Every task is idempotent through the claim rules: a delivery row is unique per (subscription, period)
and claimed before anything is sent, so a redelivered task (acks_late + reject_on_worker_lost: a killed
worker's tasks go to another) finds the row and does nothing. A short retry is the deliver task's own
Celery retry; long ones stay in the database (next_attempt_at) and are enqueued by the clock when due:
a delayed task held past RabbitMQ's consumer_timeout would be redelivered, and long ETAs pile up in
worker memory (service.delivery.retries).

Subscriptions are claimed for QUEUED_CLAIM rather than CLAIM: a day's backlog may wait in the queue
longer than ten minutes, and the broker, not a process, owns a queued claim.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.exceptions import MaxRetriesExceededError
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutdown
from kombu import Queue
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from service import why
from service.config import Settings, get_settings
from service.db import get_engine, session_factory
from service.delivery.attempt import ChannelPool, not_deliverable
from service.delivery.batch import Planned, deliver_batch
from service.delivery.claims import (
    QUEUED_CLAIM,
    claim_many,
    due_subscriptions,
    hand_over,
    schedule_new,
    set_claimed,
)
from service.delivery.dispatch import DispatchReport, log_delivery
from service.delivery.lease import instance_name
from service.delivery.metrics import PASS_SECONDS
from service.delivery.pools import PoolMatcher, to_compose
from service.delivery.recovery import Heartbeat, recover
from service.delivery.retries import EnqueuedRetries, retries_for_the_clock, short_retries
from service.delivery.schedule import Schedule, ScheduleError, latest_slot, next_send_at
from service.digest.compose import build_digest, item_from_json, item_json
from service.matching.batch import ScreenedRanker
from service.models import Paper, Profile, Subscription
from service.oplog import log_event

log = logging.getLogger("paperboy.tasks")

DELIVER_BATCH = 50  # digests per deliver task: one SMTP connection each, short enough to redeliver
CHANNEL_QUEUES = ("email", "slack")

app = Celery("paperboy")


def configure(settings: Settings) -> Celery:
    """Point the app at the broker; queue names carry QUEUE_PREFIX (tests and shared brokers)."""
    prefix = settings.queue_prefix
    queues = [Queue(prefix + name) for name in ("match", *CHANNEL_QUEUES)]
    if app.conf.broker_url != settings.broker_url:
        # Celery keeps its connection and producer pools once made: a new broker needs new ones.
        app._pool = None
        app.amqp._producer_pool = None
    app.conf.update(
        broker_url=settings.broker_url,
        task_acks_late=True,  # a task is acknowledged after it ran ...
        task_reject_on_worker_lost=True,  # ... and requeued if its worker dies (kill -9, OOM)
        worker_prefetch_multiplier=1,  # a worker holds one task per process it can run
        task_ignore_result=True,
        task_queues=queues,
        task_default_queue=prefix + "match",
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,  # Flower and `celery events` see the tasks
        task_send_sent_event=True,
    )
    return app


def queue_name(settings: Settings, name: str) -> str:
    return settings.queue_prefix + name


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def enqueue_pass(engine: Engine, settings: Settings, now: dt.datetime) -> DispatchReport:
    """The clock's pass with a broker: claim every due subscription and enqueue the work."""
    with PASS_SECONDS.time():
        return _enqueue_pass(engine, settings, now)


def _enqueue_pass(engine: Engine, settings: Settings, now: dt.datetime) -> DispatchReport:
    recover(engine, settings, now)
    report = DispatchReport(scheduled=schedule_new(engine, now))
    # Each batch is claimed in the clock's name until its task is published: a clock killed in
    # between leaves claims that the next pass frees once this heartbeat is gone, not after an hour.
    clock = instance_name()  # its own name: an in-process worker's heartbeat is not this pass's
    beat = Heartbeat(engine, clock, interval_s=settings.heartbeat_s).start(beat_now=True)
    try:
        seen: set[int] = set()
        while True:
            due = [(sid, at) for sid, at in due_subscriptions(engine, now) if sid not in seen]
            if not due:
                break
            seen.update(sid for sid, _ in due)
            until, won = claim_many(engine, [sid for sid, _ in due], now, hold=QUEUED_CLAIM, owner=clock)
            report.lost_claims += len(due) - len(won)
            if won:
                shard = [(sid, _iso(at)) for sid, at in due if sid in won]
                try:
                    match_task.apply_async(
                        args=(shard, _iso(until), _iso(now)), queue=queue_name(settings, "match")
                    )
                except Exception:
                    # Not on the queue (the broker unreachable past kombu's publish retries): the claims
                    # go back as they were, due for the next pass rather than after a queued claim's hour.
                    set_claimed(engine, until, {sid: at for sid, at in due if sid in won})
                    raise
                hand_over(engine, list(won), until, clock)
    finally:
        beat.stop()
    enqueue_retries(engine, settings, now)
    return report


# A retry attempt still due this long after it was enqueued was skipped or lost: enqueued again (a
# duplicate is harmless through the claim, a retry left for an hour is not).
_ENQUEUED_RETRIES = EnqueuedRetries(dt.timedelta(minutes=1))


def enqueue_retries(engine: Engine, settings: Settings, now: dt.datetime) -> int:
    """Enqueue the due retries that wait in the database (service.delivery.retries), each attempt once;
    the clock's retry job runs this between passes, so a retry never waits for the next pass."""
    with session_factory(engine)() as session:
        due = _ENQUEUED_RETRIES.fresh(retries_for_the_clock(session, now, settings), now)
    for start in range(0, len(due), DELIVER_BATCH):
        batch = due[start : start + DELIVER_BATCH]
        entries = [(sid, period, None, None) for sid, period, _ in batch]
        deliver_task.apply_async(args=(entries, None, _iso(now)), queue=queue_name(settings, "email"))
        _ENQUEUED_RETRIES.add(batch, now)
    return len(due)


@app.task(name="paperboy.match", bind=True)
def match_task(self: Any, shard: Sequence[tuple[int, str]], until: str, now: str) -> int:
    """Compose the digests of a batch of claimed subscriptions; enqueue their delivery."""
    settings = get_settings()
    return match_shard(get_engine(settings), settings, shard, _at(until), _at(now))  # type: ignore[arg-type]


def match_shard(
    engine: Engine,
    settings: Settings,
    shard: Sequence[tuple[int, str | None]],
    until: dt.datetime,
    now: dt.datetime,
) -> int:
    # The process's CPU, not the thread's: helper threads (BLAS, onnxruntime) work for the match too.
    started, cpu = time.perf_counter(), time.process_time()
    due_at = {sid: _at(at) for sid, at in shard}
    plans: list[tuple[Subscription, str, dt.datetime]] = []
    broken: list[int] = []
    with session_factory(engine)() as session, session.begin():
        subs = session.scalars(to_compose(due_at).where(Subscription.next_digest_at == until)).all()
        for sub in subs:
            try:
                schedule = Schedule.of(sub)
            except ScheduleError as exc:
                sub.needs_attention, sub.next_digest_at = f"schedule: {exc}", None
                sub.claimed_by = None
                broken.append(sub.id)
                continue
            plans.append((sub, latest_slot(schedule, now).period, next_send_at(schedule, now)))
        ready = [sub for sub, _, _ in plans if not_deliverable(sub) is None]
        matcher = _matcher(session, settings, now)
        ranked_before = matcher.rank_seconds
        # Items only: the deliver task builds each digest (its signed links) when it sends it.
        chosen = matcher.choose(session, ready)
        by_channel: dict[str, list[tuple[int, str, list[dict[str, Any]] | None, str | None]]] = {}
        for sub, period, next_at in plans:
            choice = chosen.get(sub.id)
            items = [item_json(item) for item in choice[0]] if choice is not None else None
            by_channel.setdefault(sub.channel, []).append((sub.id, period, items, _iso(next_at)))
    tasks = 0
    for channel, entries in by_channel.items():
        queue = queue_name(settings, channel if channel in CHANNEL_QUEUES else "email")
        for start in range(0, len(entries), DELIVER_BATCH):
            deliver_task.apply_async(
                args=(entries[start : start + DELIVER_BATCH], _iso(until), _iso(now)), queue=queue
            )
            tasks += 1
    # The match stage's own costs, for `bench/scale_bench.py` and operators sizing the match queue.
    log_event(
        log,
        "match",
        subscriptions=len(shard),
        composed=len(chosen),
        deliver_tasks=tasks,
        rank_s=round(matcher.rank_seconds - ranked_before, 3),
        cpu_s=round(time.process_time() - cpu, 3),
        seconds=round(time.perf_counter() - started, 3),
    )
    return len(plans)


_SCREEN: ScreenedRanker | None = None
_MATCHER: tuple[str, PoolMatcher] | None = None  # (database, the matcher of its latest pass)


def _matcher(session: Session, settings: Settings, now: dt.datetime) -> PoolMatcher:
    """One PoolMatcher per worker process and pass (`now`), reused by the pass's match tasks.

    The in-process pass keeps one for all its batches; a new one per task loaded the pool's papers and
    built its match context again for every batch. It is reused only while the papers it loaded are
    still those the database holds for its window (one indexed count).
    """
    global _MATCHER
    database = str(session.get_bind().url)
    if _MATCHER is not None and _MATCHER[0] == database and _MATCHER[1].now == now:
        matcher = _MATCHER[1]
        if matcher.loaded_after is None:
            return matcher
        count, last = session.execute(
            select(func.count(), func.max(Paper.id)).where(
                Paper.first_seen_at > matcher.loaded_after, Paper.first_seen_at <= now
            )
        ).one()
        if count == len(matcher.papers) and last == max((p.id for p in matcher.papers), default=None):
            return matcher
    _MATCHER = (database, PoolMatcher(settings, now, screen=_screen(settings)))
    return _MATCHER[1]


def _screen(settings: Settings) -> ScreenedRanker:
    """One batch screen per worker process, reused by its match tasks (rebuilt when stale)."""
    global _SCREEN
    if _SCREEN is None:
        _SCREEN = ScreenedRanker(settings, build_after=0)
    return _SCREEN


@app.task(name="paperboy.deliver", bind=True)
def deliver_task(
    self: Any,
    entries: Sequence[tuple[int, str, list[dict[str, Any]] | None, str | None]],
    until: str | None,
    now: str,
) -> int:
    """Deliver a batch; entries are (subscription, period, composed items or None for a retry, next slot)."""
    settings = get_settings()
    engine = get_engine(settings)
    sent = deliver_entries(engine, settings, entries, _at(until), _at(now))  # type: ignore[arg-type]
    retry_soon(self, engine, settings, [(sid, period) for sid, period, *_ in entries], _at(now))  # type: ignore[arg-type]
    return sent


def retry_soon(
    task: Any, engine: Engine, settings: Settings, keys: list[tuple[int, str]], now: dt.datetime
) -> None:
    """The batch's short retries go again after their countdown, as a task of their own (Celery's retry:
    this message is acknowledged, a delayed copy published); long ones are left to the clock."""
    with session_factory(engine)() as session:
        waiting = short_retries(session, keys, now, settings)
    if not waiting:
        return
    at = max(next_at for _, _, next_at in waiting)
    entries = [(sid, period, None, None) for sid, period, _ in waiting]
    try:
        # The retry runs at `at` on the pass's clock, so every claim it retries is due by then.
        raise task.retry(
            args=(entries, None, _iso(at)),
            countdown=(at - now).total_seconds(),
            max_retries=settings.delivery_max_attempts,
        )
    except MaxRetriesExceededError:
        log.warning("event=retry_left_to_clock deliveries=%s", len(entries))


def deliver_entries(
    engine: Engine,
    settings: Settings,
    entries: Sequence[tuple[int, str, list[dict[str, Any]] | None, str | None]],
    until: dt.datetime | None,
    now: dt.datetime,
) -> int:
    """The batch through deliver_batch, as a pass delivers it; the claims delivered are advanced.

    An unexpected error (a bug, the database) leaves its subscriptions' claims to lapse and fails the
    task once the others are recorded.
    """
    next_slot = {(sid, period): _at(next_at) for sid, period, _, next_at in entries}
    with session_factory(engine)() as session:  # the subscriptions of the composed digests, read once
        ids = [sid for sid, _, items, _ in entries if items is not None]
        subs = {
            sub.id: sub
            for sub in session.scalars(
                select(Subscription)
                .where(Subscription.id.in_(ids))
                .options(selectinload(Subscription.profile).selectinload(Profile.interests))
            )
        }
        planned = [
            Planned(
                sid,
                period,
                build_digest(
                    subs[sid], period, [item_from_json(i) for i in items], now=now, settings=settings
                )
                if items is not None
                else None,
            )
            for sid, period, items, _ in entries
            if items is None or sid in subs
        ]
    sent = 0
    advanced: dict[int, dt.datetime | None] = {}
    notes: list[tuple[int, why.Note]] = []  # "why no email today"
    errors: list[Exception] = []
    with ChannelPool(settings) as pool:
        for plan, result in deliver_batch(
            engine, planned, channel=pool, now=now, settings=settings, instance=worker_instance()
        ):
            if isinstance(result, Exception):
                errors.append(result)
                continue
            log_delivery(result, worker_instance())
            notes.append((plan.subscription_id, why.classify(result)))
            sent += result.status == "sent"
            if until is not None:
                advanced[plan.subscription_id] = next_slot[(plan.subscription_id, plan.period)]
    if until is not None:
        set_claimed(engine, until, advanced)
    why.record(engine, notes, pass_at=now, at=now, instance=worker_instance())
    if errors:
        raise errors[0]
    return sent


_INSTANCE: dict[int, str] = {}
_HEARTBEATS: dict[int, Heartbeat] = {}


@worker_process_init.connect
def _child_started(**_: Any) -> None:
    """A forked pool process: never share the parent's database connections; beat on our own."""
    get_engine().dispose(close=False)
    _start_heartbeat()


@worker_init.connect
def _start_heartbeat(**_: Any) -> None:
    """Each worker process says it is alive, so the deliveries it claims are known to be in flight."""
    if os.getpid() in _HEARTBEATS or not get_settings().broker_url:
        return
    beat = Heartbeat(get_engine(), worker_instance(), interval_s=get_settings().heartbeat_s)
    _HEARTBEATS[os.getpid()] = beat.start(beat_now=True)


@worker_shutdown.connect
@worker_process_shutdown.connect
def stop_heartbeat(**_: Any) -> None:
    """A worker stopping cleanly says so: its tasks are finished, and its beat thread must not outlive it."""
    beat = _HEARTBEATS.pop(os.getpid(), None)
    if beat is not None:
        beat.stop()


def worker_instance() -> str:
    """This worker process's name in claimed_by, one per process (prefork children get their own)."""
    pid = os.getpid()
    if pid not in _INSTANCE:
        _INSTANCE[pid] = instance_name()
    return _INSTANCE[pid]


__all__ = ["app", "configure", "deliver_task", "enqueue_pass", "enqueue_retries", "match_task"]
