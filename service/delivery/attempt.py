"""Exactly-once delivery of one digest: claim and record, commit; send; then mark (DESIGN convention 3).

1. Claim: INSERT the (subscription, period) delivery row, relying on its unique constraint, or take a
   'retry' row whose next_attempt_at has come with a conditional UPDATE; the papers it holds are
   recorded in the same transaction (unique per subscription: a paper is never in two digests).
2. Send through the subscription's channel, outside any transaction.
3. Mark the row 'sent' with the message id; or 'retry' with exponential backoff and jitter; or
   'failed' (permanent error, or attempts exhausted), releasing its papers for a later digest.

A crash between 2 and 3 leaves the row 'claimed', and a claimed row is never sent again automatically:
at worst a digest is reported as unsent, never sent twice. Channel-agnostic: `channel_for` picks the
channel class from `subscription.channel` through the CHANNELS registry. The SQL of claims and marks
lives in service.delivery.records; this module holds the flow and the retry policy.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.channels.base import Channel, DeliveryError
from service.config import Settings
from service.db import session_factory
from service.delivery.records import (
    Claimed,
    claim_new,
    claim_retry,
    count_hard_bounce,
    describe,
    find,
    flag_needs_attention,
    mark_sent,
    mark_unsent,
    retries_due,
    retry_is_due,
)
from service.digest.compose import Ranker, compose_digest
from service.digest.model import Digest
from service.mail.events import note_smtp_bounce
from service.models import Subscription

__all__ = ["CHANNELS", "ChannelPool", "DeliveryOutcome", "channel_for", "deliver", "describe", "retries_due"]

# Channel name -> "module:Class"; the class is built as Class(settings). One line per channel.
CHANNELS: dict[str, str] = {
    "email": "service.channels.email:EmailChannel",
    "slack": "service.channels.slack:SlackChannel",
    "webhook": "service.channels.webhook:WebhookChannel",
    "feed": "service.channels.feed:FeedChannel",
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
    candidates: int | None = None  # empty: how many new papers there were (service/why.py)
    best_score: float | None = None  # empty: the best of their scores


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
    digest: Digest | None = None,
) -> DeliveryOutcome:
    """Deliver the subscription's digest for `period` at most once (see the module docstring).

    `digest`: composed beforehand for this period (a pass's pool matching); composed here if None.
    """
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
        if channel is not None and not isinstance(channel, ChannelPool) and channel.name != sub.channel:
            return skipped(f"a {channel.name} channel cannot deliver a {sub.channel} subscription")
        existing = find(session, sub.id, period)
        if existing is not None and not retry_is_due(existing, now):
            return skipped(describe(existing), existing.id)
        fresh = None
        if existing is None and digest is not None:
            fresh = digest
        elif existing is None:
            fresh = compose_digest(session, sub, period, now=now, settings=settings, ranker=ranker)
        sub.profile.interests  # noqa: B018 - loaded now: the channel may read them after the session

    try:
        with factory() as session, session.begin():
            if fresh is not None:
                empty = not fresh.items and not settings.send_empty_digests
                claimed = claim_new(session, sub, period, fresh, now=now, instance=instance, empty=empty)
            else:
                claimed = claim_retry(session, sub, period, now=now, settings=settings, instance=instance)
    except IntegrityError:
        # A concurrent delivery of another period of this subscription recorded one of these papers
        # first; nothing was claimed here, and the next attempt composes from what is left.
        return skipped("another delivery of this subscription took some of these papers; try again")
    if claimed is None:
        return skipped("claimed by another instance, or its retry is not due")
    if claimed.status == "empty":
        return DeliveryOutcome(
            "empty",
            sub.id,
            period,
            delivery_id=claimed.delivery_id,
            candidates=fresh.candidates if fresh is not None else None,
            best_score=fresh.best_score if fresh is not None else None,
        )

    own = channel is None
    if channel is None:
        sender = channel_for(sub, settings)
    elif isinstance(channel, ChannelPool):
        sender = channel.get(sub)
    else:
        sender = channel
    try:
        message_id = sender.send(sub, claimed.digest)
    except Exception as exc:
        # Channels raise DeliveryError; anything else is most likely a bug before the network
        # (rendering), so it is retried like a transient error, within the attempt limit.
        error = (
            exc if isinstance(exc, DeliveryError) else DeliveryError(f"unexpected {exc!r}", permanent=False)
        )
        return record_failure(factory, sub, period, claimed, error, now=now, settings=settings, rng=rng)
    finally:
        if own:
            sender.close()
    mark_sent(factory, sub, claimed.delivery_id, message_id, now=now)
    return DeliveryOutcome(
        "sent",
        sub.id,
        period,
        delivery_id=claimed.delivery_id,
        message_id=message_id,
        papers=len(claimed.digest.items),
        attempts=claimed.attempts,
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


def retry_delay(attempts: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half the delay fixed, half random."""
    delay = min(settings.delivery_retry_max_s, settings.delivery_retry_base_s * 2 ** max(attempts - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def record_failure(
    factory: sessionmaker[Session],
    sub: Subscription,
    period: str,
    claimed: Claimed,
    exc: DeliveryError,
    *,
    now: dt.datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """'retry' (transient, attempts left) or 'failed'; permanent errors are held against the address
    (email: a hard bounce) or the subscription (other channels: needs attention)."""
    error = str(exc)[:2000]
    next_at = None
    if not exc.permanent and claimed.attempts < settings.delivery_max_attempts:
        delay = max(retry_delay(claimed.attempts, settings, rng), exc.retry_after or 0.0)
        next_at = now + dt.timedelta(seconds=delay)
    with factory() as session, session.begin():
        mark_unsent(session, claimed.delivery_id, error=error, next_attempt_at=next_at, now=now)
        if exc.permanent and sub.channel == "email" and sub.subscriber_id is not None:
            count_hard_bounce(session, sub.subscriber_id, settings.hard_bounce_limit)
            note_smtp_bounce(session, sub, claimed.delivery_id, claimed.attempts, error, now)  # bounce rate
        elif exc.permanent:
            flag_needs_attention(session, sub.id, error)
    return DeliveryOutcome(
        "retry" if next_at else "failed",
        sub.id,
        period,
        delivery_id=claimed.delivery_id,
        attempts=claimed.attempts,
        error=error,
        next_attempt_at=next_at,
    )
