"""Exactly-once delivery of one digest: claim and record, commit; send; then mark (DESIGN convention 3).

1. Claim: INSERT the (subscription, period) delivery row, relying on its unique constraint, or take a
   'retry' row whose next_attempt_at has come with a conditional UPDATE; the papers it holds are
   recorded in the same transaction (unique per subscription: a paper is never in two digests).
2. Send through the subscription's channel, outside any transaction.
3. Mark the row 'sent' with the message id; or 'retry' with exponential backoff and jitter; or
   'failed' (permanent error, or attempts exhausted), releasing its papers for a later digest.

A crash between 2 and 3 leaves the row 'claimed', and a claimed row is never sent again automatically:
at worst a digest is reported as unsent, never sent twice. Channel-agnostic: `channel_for` picks the
channel class from `subscription.channel` through the CHANNELS registry.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.channels.base import Channel, DeliveryError
from service.config import Settings
from service.db import session_factory
from service.digest.compose import Ranker, compose_digest, digest_from_record, item_record
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Subscriber, Subscription

# Channel name -> "module:Class"; the class is built as Class(settings). One line per channel.
CHANNELS: dict[str, str] = {
    "email": "service.channels.email:EmailChannel",
}


def channel_for(subscription: Subscription, settings: Settings) -> Channel:
    """A new channel instance for the subscription's channel name."""
    target = CHANNELS.get(subscription.channel)
    if target is None:
        raise ValueError(f"subscription {subscription.id} uses unknown channel {subscription.channel!r}")
    module, cls = target.split(":")
    channel: Channel = getattr(importlib.import_module(module), cls)(settings)
    return channel


class ChannelPool:
    """One channel per channel name for a batch (one SMTP connection for all its emails)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channels: dict[str, Channel] = {}

    def get(self, subscription: Subscription) -> Channel:
        if subscription.channel not in self._channels:
            self._channels[subscription.channel] = channel_for(subscription, self.settings)
        return self._channels[subscription.channel]

    def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> ChannelPool:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one deliver() call did. `status`: sent | empty | retry | failed | skipped."""

    status: str
    subscription_id: int
    period: str
    delivery_id: int | None = None
    message_id: str | None = None
    papers: int = 0
    attempts: int = 0
    error: str | None = None  # the send error, or why nothing was done (skipped)
    next_attempt_at: dt.datetime | None = None


def deliver(
    engine: Engine,
    subscription_id: int,
    period: str,
    *,
    channel: Channel | ChannelPool | None = None,
    now: dt.datetime,
    settings: Settings,
    instance: str,
    ranker: Ranker | None = None,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """Deliver the subscription's digest for `period` at most once (see the module docstring)."""
    factory = session_factory(engine)

    def skipped(reason: str, delivery_id: int | None = None) -> DeliveryOutcome:
        return DeliveryOutcome("skipped", subscription_id, period, delivery_id=delivery_id, error=reason)

    with factory() as session, session.begin():
        sub = session.scalar(
            select(Subscription)
            .where(Subscription.id == subscription_id)
            .options(selectinload(Subscription.subscriber), selectinload(Subscription.profile))
        )
        if sub is None:
            return skipped(f"subscription {subscription_id} does not exist")
        reason = not_deliverable(sub)
        if reason:
            return skipped(reason)
        if sub.channel not in CHANNELS:
            return skipped(f"unknown channel {sub.channel!r}")
        existing = session.scalar(
            select(Delivery).where(Delivery.subscription_id == sub.id, Delivery.period == period)
        )
        if existing is not None and not (existing.status == "retry" and _due(existing, now)):
            return skipped(describe(existing), existing.id)
        fresh = None
        if existing is None:
            fresh = compose_digest(session, sub, period, now=now, settings=settings, ranker=ranker)
        sub.profile.interests  # noqa: B018 - loaded now: the channel may read them after the session

    try:
        with factory() as session, session.begin():
            if fresh is not None:
                claimed = _claim_new(
                    session, sub, period, fresh, now=now, settings=settings, instance=instance
                )
            else:
                claimed = _claim_retry(session, sub, period, now=now, settings=settings, instance=instance)
    except IntegrityError:
        # A concurrent delivery of another period of this subscription recorded one of these papers
        # first; nothing was claimed here, and the next attempt composes from what is left.
        return skipped("another delivery of this subscription took some of these papers; try again")
    if claimed is None:
        return skipped("claimed by another instance, or its retry is not due")
    delivery_id, attempts, digest, status = claimed
    if status == "empty":
        return DeliveryOutcome("empty", sub.id, period, delivery_id=delivery_id, attempts=attempts)

    own = channel is None
    if channel is None:
        sender = channel_for(sub, settings)
    elif isinstance(channel, ChannelPool):
        sender = channel.get(sub)
    else:
        sender = channel
    try:
        message_id = sender.send(sub, digest)
    except Exception as exc:
        # Channels raise DeliveryError; anything else is most likely a bug before the network
        # (rendering), so it is retried like a transient error, within the attempt limit.
        error = (
            exc if isinstance(exc, DeliveryError) else DeliveryError(f"unexpected {exc!r}", permanent=False)
        )
        return record_failure(
            factory, sub, period, delivery_id, attempts, error, now=now, settings=settings, rng=rng
        )
    finally:
        if own:
            sender.close()
    mark_sent(factory, sub, delivery_id, message_id, now=now)
    return DeliveryOutcome(
        "sent",
        sub.id,
        period,
        delivery_id=delivery_id,
        message_id=message_id,
        papers=len(digest.items),
        attempts=attempts,
    )


def not_deliverable(sub: Subscription) -> str | None:
    """Why this subscription gets no digest now, or None."""
    if sub.status != "active":
        return f"subscription is {sub.status}"
    if sub.paused:
        return "subscription is paused"
    if sub.needs_attention:
        return f"subscription needs attention: {sub.needs_attention}"
    if sub.channel == "email" and sub.subscriber is not None:
        if sub.subscriber.flagged:
            return f"address flagged after {sub.subscriber.hard_bounces} hard bounces"
        if not sub.subscriber.verified:
            return "address not confirmed yet"
    return None


def describe(delivery: Delivery) -> str:
    """A delivery's state in words (why deliver() left it alone)."""
    if delivery.status == "sent":
        return f"already sent at {delivery.sent_at:%Y-%m-%d %H:%M} UTC ({delivery.message_id})"
    if delivery.status == "claimed":
        return (
            f"claimed by {delivery.claimed_by} at {delivery.claimed_at:%Y-%m-%d %H:%M} UTC and never marked: "
            "it may have been sent, so it is not sent again automatically"
        )
    if delivery.status == "retry":
        return f"retry {delivery.attempts + 1} is due at {delivery.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    if delivery.status == "failed":
        return f"failed after {delivery.attempts} attempt(s): {delivery.last_error}"
    return "nothing to send for this period"


def _due(delivery: Delivery, now: dt.datetime) -> bool:
    return delivery.next_attempt_at is None or delivery.next_attempt_at <= now


def _insert_ignoring_conflict(session: Session, values: dict[str, object]) -> int | None:
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"deliveries need PostgreSQL or SQLite, not {dialect}")
    stmt = (
        insert(Delivery)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["subscription_id", "period"])
        .returning(Delivery.id)
    )
    return session.execute(stmt).scalar_one_or_none()


Claimed = tuple[int, int, Digest, str]  # delivery id, attempts, digest, status


def _claim_new(
    session: Session,
    sub: Subscription,
    period: str,
    digest: Digest,
    *,
    now: dt.datetime,
    settings: Settings,
    instance: str,
) -> Claimed | None:
    empty = not digest.items and not settings.send_empty_digests
    status = "empty" if empty else "claimed"
    delivery_id = _insert_ignoring_conflict(
        session,
        {
            "subscription_id": sub.id,
            "period": period,
            "status": status,
            "attempts": 0 if empty else 1,
            "claimed_by": instance,
            "claimed_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    if delivery_id is None:
        return None
    session.add_all(
        DeliveryPaper(
            delivery_id=delivery_id,
            subscription_id=sub.id,
            paper_id=item.paper_id,
            rank=rank,
            score=item.score,
            reason=item_record(item),
        )
        for rank, item in enumerate(digest.items, start=1)
    )
    session.flush()
    return delivery_id, 0 if empty else 1, digest, status


def _claim_retry(
    session: Session, sub: Subscription, period: str, *, now: dt.datetime, settings: Settings, instance: str
) -> Claimed | None:
    claimed = session.execute(
        update(Delivery)
        .where(
            Delivery.subscription_id == sub.id,
            Delivery.period == period,
            Delivery.status == "retry",
            Delivery.next_attempt_at <= now,
        )
        .values(
            status="claimed",
            attempts=Delivery.attempts + 1,
            claimed_by=instance,
            claimed_at=now,
            updated_at=now,
        )
        .returning(Delivery.id, Delivery.attempts)
    ).first()
    if claimed is None:
        return None
    delivery = session.get_one(Delivery, claimed.id)
    digest = digest_from_record(session, sub, delivery, now=now, settings=settings)
    return claimed.id, claimed.attempts, digest, "claimed"


def retry_delay(attempts: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half the delay fixed, half random."""
    delay = min(settings.delivery_retry_max_s, settings.delivery_retry_base_s * 2 ** max(attempts - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def record_failure(
    factory: sessionmaker[Session],
    sub: Subscription,
    period: str,
    delivery_id: int,
    attempts: int,
    exc: DeliveryError,
    *,
    now: dt.datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """Mark a claimed delivery 'retry' (transient, attempts left) or 'failed'."""
    error = str(exc)[:2000]
    final = exc.permanent or attempts >= settings.delivery_max_attempts
    next_at = None
    if not final:
        delay = max(retry_delay(attempts, settings, rng), exc.retry_after or 0.0)
        next_at = now + dt.timedelta(seconds=delay)
    with factory() as session, session.begin():
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "claimed")
            .values(
                status="failed" if final else "retry",
                last_error=error,
                next_attempt_at=next_at,
                updated_at=now,
            )
        )
        if final:
            # Never delivered: its papers go back to the pool for the subscription's next digest.
            session.execute(delete(DeliveryPaper).where(DeliveryPaper.delivery_id == delivery_id))
        if exc.permanent:
            _count_permanent_error(session, sub, error, settings)
    status = "failed" if final else "retry"
    return DeliveryOutcome(
        status,
        sub.id,
        period,
        delivery_id=delivery_id,
        attempts=attempts,
        error=error,
        next_attempt_at=next_at,
    )


def _count_permanent_error(session: Session, sub: Subscription, error: str, settings: Settings) -> None:
    """Email: a hard bounce, the address flagged at the limit. Other channels: needs attention."""
    if sub.channel == "email" and sub.subscriber_id is not None:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == sub.subscriber_id)
            .values(hard_bounces=Subscriber.hard_bounces + 1)
        )
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == sub.subscriber_id, Subscriber.hard_bounces >= settings.hard_bounce_limit)
            .values(flagged=True)
        )
    else:
        session.execute(update(Subscription).where(Subscription.id == sub.id).values(needs_attention=error))


def mark_sent(
    factory: sessionmaker[Session], sub: Subscription, delivery_id: int, message_id: str, *, now: dt.datetime
) -> None:
    """Record a successful send (a hard-bounce streak ends with it)."""
    with factory() as session, session.begin():
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "claimed")
            .values(status="sent", message_id=message_id[:300], sent_at=now, last_error=None, updated_at=now)
        )
        session.execute(update(Subscription).where(Subscription.id == sub.id).values(last_sent_at=now))
        if sub.channel == "email" and sub.subscriber_id is not None:
            session.execute(
                update(Subscriber).where(Subscriber.id == sub.subscriber_id).values(hard_bounces=0)
            )


def retries_due(session: Session, now: dt.datetime, limit: int = 500) -> list[tuple[int, str]]:
    """(subscription id, period) of the deliveries whose retry has come, oldest first."""
    rows = session.execute(
        select(Delivery.subscription_id, Delivery.period)
        .where(Delivery.status == "retry", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    return [(row.subscription_id, row.period) for row in rows]
