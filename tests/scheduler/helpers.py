"""Shared pieces of the scheduler tests: a recording SMTP transport and real subscriptions."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels.base import DeliveryError
from service.channels.email import EmailChannel
from service.clock import Clock
from service.config import Settings
from service.models import Delivery, Subscription
from service.subscription import SubscriptionRequest, create_subscription


@dataclass
class RecordingTransport:
    """Stands in for the SMTP server only: records each message, or fails as scripted."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (recipient, Message-ID)
    failures: list[DeliveryError] = field(default_factory=list)  # raised by the next sends, in order
    fail_always: DeliveryError | None = None
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, sender: str, recipient: str, payload: bytes, message_id: str) -> None:
        with self._lock:
            self.attempts += 1
            if self.fail_always is not None:
                raise self.fail_always
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append((recipient, message_id))

    def close(self) -> None:
        pass

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(message_id for _, message_id in self.sent)


def email_channel(settings: Settings, transport: RecordingTransport, clock: Clock) -> EmailChannel:
    return EmailChannel(settings, transport=transport, now=clock.now, sleep=lambda _s: None)


def subscribe(
    engine: Engine,
    email: str,
    *,
    cadence: str = "daily",
    send_time: str = "08:00",
    timezone: str = "UTC",
    weekday: str | None = None,
) -> int:
    with Session(engine) as session, session.begin():
        sub = create_subscription(
            session,
            SubscriptionRequest(
                email=email,
                interests=["sparse attention"],
                cadence=cadence,
                send_time=send_time,
                timezone=timezone,
                weekday=weekday,
            ),
        )
        # Subscribing gives it a slot on the real clock; these tests drive passes with their own clock,
        # whose first pass schedules it as it did before that.
        sub.next_digest_at = None
        return sub.id


def deliveries(engine: Engine, subscription_id: int) -> list[Delivery]:
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.subscription_id == subscription_id).order_by(Delivery.id)
            )
        )


def subscription(engine: Engine, subscription_id: int) -> Subscription:
    with Session(engine, expire_on_commit=False) as session:
        sub = session.get(Subscription, subscription_id)
        assert sub is not None
        return sub


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
