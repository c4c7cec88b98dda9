"""Double opt-in for the web form, on top of service.subscription.

The rules keep the form from revealing or changing anyone's subscription:
- a new address gets a subscriber, a profile and a *pending* subscription;
- an address whose email subscription is still pending, or was unsubscribed, takes the new preferences
  and is pending again (nothing is sent before its owner follows the link, so a stranger typing the
  address changes nothing that matters);
- an address with an active subscription is left exactly as it is.
Every case sends the same confirmation email; following its link confirms (again) and leads to the
preferences page, so the form also serves as "send me my link again".
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.models import Subscriber, Subscription
from service.subscription import (
    SubscriptionRequest,
    add_interests,
    confirm_subscriber,
    create_subscription,
    profile_for,
    send_confirmation_email,
    validate_request,
)
from service.web.forms import SubscribeInput, split_topics
from service.web.preferences import reschedule

log = logging.getLogger(__name__)


def _email_subscription(session: Session, subscriber: Subscriber) -> Subscription | None:
    return session.scalar(
        select(Subscription)
        .where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.channel == "email",
            Subscription.address == subscriber.email,
        )
        .order_by(Subscription.id)
        .limit(1)
    )


def subscription_request(data: SubscribeInput) -> SubscriptionRequest:
    """What the form asks for, as the subscription layer takes it."""
    return SubscriptionRequest(
        email=data.email,
        interests=split_topics(data.keywords),
        query=data.query or None,
        cadence=data.cadence,
        weekday=data.weekday if data.cadence == "weekly" else None,
        send_time=data.time(),
        timezone=data.timezone,
        verified=False,
    )


def check_input(data: SubscribeInput) -> None:
    """SubscriptionError when what was typed breaks a rule; runs before the address is looked up, so
    the answer never depends on whether the address is known."""
    validate_request(subscription_request(data))


def request_subscription(session: Session, data: SubscribeInput, *, now: dt.datetime) -> int:
    """Records a sign-up as the rules above say; returns the subscriber's id (flushed, not committed).

    Call `check_input` first: what follows depends on the address's state."""
    request = subscription_request(data)
    topics = list(request.interests)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == data.email))
    subscription = _email_subscription(session, subscriber) if subscriber is not None else None
    if subscriber is None or subscription is None:
        subscription = create_subscription(session, request)
        # A web sign-up always waits for the link, even for an address verified some other way.
        subscription.status = "pending"
        reschedule(subscription, now)
        session.flush()
        return subscription.subscriber_id or 0
    if subscription.status == "active":
        return subscriber.id
    subscription.interests = add_interests(
        session, profile_for(session, subscriber), topics, data.query or None
    )
    subscription.status = "pending"
    subscription.paused = False
    subscription.cadence = data.cadence
    subscription.weekday = data.weekday if data.cadence == "weekly" else None
    subscription.send_time = data.time()
    subscription.timezone = data.timezone
    reschedule(subscription, now)
    session.flush()
    return subscriber.id


def confirm(session: Session, subscriber: Subscriber, *, now: dt.datetime) -> None:
    """The owner followed the link: verified, and the pending subscriptions start on their schedule."""
    for subscription in confirm_subscriber(session, subscriber.id):
        reschedule(subscription, now)
    session.flush()


def send_confirmation(sessions: sessionmaker[Session], subscriber_id: int, settings: Settings) -> None:
    """Emails the confirmation link (runs after the response, so its timing reveals nothing)."""
    with sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return
        subscriptions = [
            s for s in subscriber.subscriptions if s.channel == "email" and s.status != "unsubscribed"
        ]
        try:
            send_confirmation_email(subscriber, subscriptions, settings=settings)
        except Exception as exc:  # the page already answered; the log keeps the reason (never the link)
            log.warning("confirmation email to subscriber %s failed: %s", subscriber_id, exc)
