"""Double opt-in for the web form: what a sign-up does to the database, and the confirmation email.

The rules keep the form from revealing or changing anyone's subscription:
- a new address gets a subscriber, a profile and a *pending* subscription;
- an address that is still pending, or that unsubscribed, takes the new preferences (nothing is sent
  before its owner follows the link, so a stranger typing it changes nothing that matters);
- an address with an active subscription is left exactly as it is.
Every case sends the same confirmation email; following its link confirms (again) and leads to the
preferences page, so it also serves as "send me my link again".
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.models import Interest, Profile, Subscriber, Subscription
from service.web.forms import SubscribeInput
from service.web.preferences import reschedule

log = logging.getLogger(__name__)


def request_subscription(session: Session, data: SubscribeInput, *, now: dt.datetime) -> int:
    """Records a sign-up as the rules above say; returns the subscriber's id (flushed, not committed)."""
    email = data.email.lower()
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
    if subscriber is None:
        subscriber = Subscriber(email=email, verified=False, timezone=data.timezone)
        session.add(subscriber)
        session.flush()
    subscription = session.scalar(
        select(Subscription)
        .where(Subscription.subscriber_id == subscriber.id, Subscription.channel == "email")
        .order_by(Subscription.id)
        .limit(1)
    )
    if subscription is not None and subscription.status == "active":
        return subscriber.id
    if subscription is None:
        profile = Profile(name=f"email:{email}", subscriber=subscriber)
        subscription = Subscription(subscriber=subscriber, profile=profile, channel="email", address=email)
        session.add(subscription)
    profile = subscription.profile
    profile.interests = [Interest(name="my interests", keywords=data.keywords, query=data.query or None)]
    subscription.status = "pending"
    subscription.paused = False
    subscription.cadence = data.cadence
    subscription.weekday = data.weekday if data.cadence == "weekly" else None
    subscription.send_time = data.time()
    subscription.timezone = data.timezone
    subscription.interests = []
    reschedule(subscription, now)
    session.flush()
    return subscriber.id


def confirm_subscriber(session: Session, subscriber: Subscriber, *, now: dt.datetime) -> None:
    """The owner followed the link: the address is verified and its pending subscriptions start."""
    subscriber.verified = True
    for subscription in session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.status == "pending"
        )
    ):
        subscription.status = "active"
        reschedule(subscription, now)
    session.flush()


def unsubscribe(session: Session, subscription: Subscription) -> None:
    """Stops the subscription at once; its profile and history stay so a return is one click."""
    subscription.status = "unsubscribed"
    subscription.next_digest_at = None
    session.flush()


def send_confirmation(sessions: sessionmaker[Session], subscriber_id: int, settings: Settings) -> None:
    """Emails the confirmation link (runs after the response, so its timing reveals nothing)."""
    from service.channels.email import send_email
    from service.digest.render import render_email
    from service.links import confirm_url

    with sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return
        email = subscriber.email
    try:
        rendered = render_email("confirm", {"confirm_url": confirm_url(subscriber_id, settings), "email": email})
        send_email(email, rendered, settings=settings)
    except Exception as exc:  # the page already answered; the log keeps the reason (never the link)
        log.warning("confirmation email to subscriber %s failed: %s", subscriber_id, exc)
