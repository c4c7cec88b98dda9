"""Where a delivery's retry waits, with a broker: a worker's countdown when short, the database when long.

A transient send error leaves the delivery 'retry' with next_attempt_at (service.delivery.attempt).
With workers, what happens next depends on how far off that is:

- within DELIVERY_SHORT_RETRY_S (seconds): the deliver task retries itself through Celery
  (task.retry with that countdown), so the digest goes out as soon as it may, not at the next pass;
- later (minutes to hours): it stays in the database and the clock enqueues it once it is due.
  A delayed task held by a worker past RabbitMQ's consumer_timeout (30 min by default) is
  redelivered, and long ETAs pile up in worker memory, so long waits never sit on the broker.

Either way the retry runs through the same claim (a conditional UPDATE of the 'retry' row), so a
retry taken by both a countdown and the clock still goes out once. The clock leaves a worker's short
retry alone until it is overdue by DELIVERY_SHORT_RETRY_S (the countdown was lost: a retry that
could not be published, or Celery's own retry limit), then takes it too.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import Delivery


def held_by_worker(delay: dt.timedelta, settings: Settings) -> bool:
    """A retry this soon is a worker's countdown, not the clock's."""
    return delay.total_seconds() <= settings.delivery_short_retry_s


def short_retries(
    session: Session, keys: Iterable[tuple[int, str]], now: dt.datetime, settings: Settings
) -> list[tuple[int, str, dt.datetime]]:
    """Of these (subscription, period), the deliveries waiting for a short retry after `now`:
    (subscription, period, next_attempt_at). One already due was not retried by this run (a paused
    subscription, say) and is left to the clock rather than retried again and again."""
    wanted = list(keys)
    if not wanted:
        return []
    rows = session.execute(
        select(
            Delivery.subscription_id, Delivery.period, Delivery.next_attempt_at, Delivery.updated_at
        ).where(
            tuple_(Delivery.subscription_id, Delivery.period).in_(wanted),
            Delivery.status == "retry",
            Delivery.next_attempt_at > now,
        )
    ).all()
    return [
        (row.subscription_id, row.period, row.next_attempt_at)
        for row in rows
        if held_by_worker(row.next_attempt_at - row.updated_at, settings)
    ]


def retries_for_the_clock(
    session: Session, now: dt.datetime, settings: Settings
) -> list[tuple[int, str, dt.datetime]]:
    """(subscription, period, next_attempt_at) of the due retries the clock enqueues: every long one,
    and a short one only once its countdown is overdue by DELIVERY_SHORT_RETRY_S. Oldest first, all."""
    rows = session.execute(
        select(Delivery.subscription_id, Delivery.period, Delivery.next_attempt_at, Delivery.updated_at)
        .where(Delivery.status == "retry", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
    )
    overdue = dt.timedelta(seconds=settings.delivery_short_retry_s)
    return [
        (row.subscription_id, row.period, row.next_attempt_at)
        for row in rows
        if not held_by_worker(row.next_attempt_at - row.updated_at, settings)
        or row.next_attempt_at <= now - overdue
    ]


class EnqueuedRetries:
    """The retry attempts the clock has put on the queue, so a later run does not put the same attempt
    there again while it waits (a deliver task that finds it taken would only note a skip). An attempt
    is its next_attempt_at: a failed retry gets a new one. Forgotten after `hold`, as a queued claim is."""

    def __init__(self, hold: dt.timedelta) -> None:
        self.hold = hold
        self._queued: dict[tuple[int, str], tuple[dt.datetime, dt.datetime]] = {}
        self._lock = threading.Lock()

    def fresh(
        self, due: list[tuple[int, str, dt.datetime]], now: dt.datetime
    ) -> list[tuple[int, str, dt.datetime]]:
        """The due attempts not on the queue yet; the others still due are remembered, the rest forgotten."""
        with self._lock:
            keep, fresh = {}, []
            for sid, period, at in due:
                queued = self._queued.get((sid, period))
                if queued is not None and queued[0] == at and now - queued[1] < self.hold:
                    keep[(sid, period)] = queued
                else:
                    fresh.append((sid, period, at))
            self._queued = keep
            return fresh

    def add(self, enqueued: list[tuple[int, str, dt.datetime]], now: dt.datetime) -> None:
        with self._lock:
            self._queued.update({(sid, period): (at, now) for sid, period, at in enqueued})
