"""The subscriptions table's side of a pass: schedule, find what is due, claim, advance, release.

A pass claims a batch of due subscriptions with one conditional UPDATE:

    UPDATE subscriptions SET next_digest_at = <now + claim> WHERE id IN (...) AND next_digest_at <= <now>

Exactly one instance's UPDATE matches each row (PostgreSQL re-checks the WHERE after the row lock;
SQLite serialises writers), so two dispatchers never work on the same subscription at once. Every
later write is conditional on the claim still being ours (next_digest_at = the claim's expiry).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, Update, select, update

from service.db import session_factory
from service.delivery.schedule import Schedule, ScheduleError, next_send_at
from service.models import Subscription

CLAIM = dt.timedelta(minutes=10)  # how long a claimed subscription is left alone if its claimer dies
# A claim whose work waits on the broker (service.delivery.tasks): a day's backlog may wait in the queue
# longer than CLAIM, and the broker, not a process, owns it once the task is published.
QUEUED_CLAIM = dt.timedelta(hours=1)
BATCH = 500  # subscriptions claimed, composed and delivered together
SCHEDULE_CHUNK = 2000  # subscriptions given their first slot per transaction

_Stmt = TypeVar("_Stmt", Select[Any], Update)


def _active(stmt: _Stmt) -> _Stmt:
    """Only subscriptions that get digests: active and not paused."""
    return stmt.where(Subscription.status == "active", Subscription.paused.is_(False))


def schedule_new(engine: Engine, now: dt.datetime) -> int:
    """Give active subscriptions without a next_digest_at their next slot; bad schedules are flagged.

    Chunk by chunk: read, then one UPDATE per distinct slot (most new subscriptions share a few), in
    a transaction of its own: a transaction that read first could not wait for another SQLite writer.
    The UPDATEs only touch rows still unscheduled, so a concurrent pass cannot be overwritten.
    """
    done, after = 0, 0
    while True:
        with session_factory(engine)() as session:
            rows = list(
                session.scalars(
                    _active(select(Subscription))
                    .where(Subscription.next_digest_at.is_(None), Subscription.id > after)
                    .order_by(Subscription.id)
                    .limit(SCHEDULE_CHUNK)
                )
            )
        if not rows:
            return done
        after = rows[-1].id
        slots: dict[dt.datetime, list[int]] = defaultdict(list)
        flagged: dict[int, str] = {}
        for sub in rows:
            try:
                slots[next_send_at(Schedule.of(sub), now)].append(sub.id)
            except ScheduleError as exc:
                if sub.needs_attention != f"schedule: {exc}":
                    flagged[sub.id] = f"schedule: {exc}"
        with engine.begin() as conn:
            for at, ids in slots.items():
                done += conn.execute(
                    update(Subscription)
                    .where(Subscription.id.in_(ids), Subscription.next_digest_at.is_(None))
                    .values(next_digest_at=at)
                ).rowcount
            for subscription_id, message in flagged.items():
                conn.execute(
                    update(Subscription)
                    .where(Subscription.id == subscription_id, Subscription.next_digest_at.is_(None))
                    .values(needs_attention=message)
                )


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
    """Claim one due subscription; returns the claim's expiry, or None if someone else won."""
    until, won = claim_many(engine, [subscription_id], now)
    return until if won else None


def claim_many(
    engine: Engine,
    subscription_ids: Sequence[int],
    now: dt.datetime,
    *,
    hold: dt.timedelta = CLAIM,
    owner: str | None = None,
) -> tuple[dt.datetime, set[int]]:
    """Claim the due subscriptions among `subscription_ids` for `hold`: (the claims' expiry, the ids won).

    `owner` (the claiming instance) lets service.delivery.recovery free the claims as soon as that
    instance is known dead; a claim without one lasts until it expires.
    """
    until = now + hold
    if not subscription_ids:
        return until, set()
    with engine.begin() as conn:
        won = conn.execute(
            _active(update(Subscription))
            .where(Subscription.id.in_(subscription_ids), Subscription.next_digest_at <= now)
            .values(next_digest_at=until, claimed_by=owner)
            .returning(Subscription.id)
        ).scalars()
        return until, set(won)


def hand_over(
    engine: Engine, subscription_ids: Sequence[int], claimed_until: dt.datetime, owner: str
) -> None:
    """The claims' task is on the queue: the broker owns them now, so their claimer's death frees nothing."""
    with engine.begin() as conn:
        conn.execute(
            update(Subscription)
            .where(
                Subscription.id.in_(subscription_ids),
                Subscription.next_digest_at == claimed_until,
                Subscription.claimed_by == owner,
            )
            .values(claimed_by=None)
        )


def set_claimed(engine: Engine, claimed_until: dt.datetime, values: Mapping[int, dt.datetime | None]) -> None:
    """Move each claimed subscription's next_digest_at to its value, only where the claim is still ours.

    One UPDATE per distinct value: after a pass most subscriptions share their next slot. Used to
    advance delivered subscriptions and to give back the claims a stopped pass did not get to.
    """
    groups: dict[dt.datetime | None, list[int]] = defaultdict(list)
    for subscription_id, value in values.items():
        groups[value].append(subscription_id)
    if not groups:
        return
    with engine.begin() as conn:
        for value, ids in groups.items():
            conn.execute(
                update(Subscription)
                .where(Subscription.id.in_(ids), Subscription.next_digest_at == claimed_until)
                .values(next_digest_at=value, claimed_by=None)
            )


def advance(
    engine: Engine, subscription_id: int, claimed_until: dt.datetime, next_at: dt.datetime | None
) -> None:
    """Release our claim by setting the next slot (only if the claim is still ours)."""
    set_claimed(engine, claimed_until, {subscription_id: next_at})
