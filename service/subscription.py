"""Subscribers and subscriptions: create, list, confirm, unsubscribe (the CLI and the web app share these).

A subscriber is an email address; their interests live in one profile ("email:<address>"); each
subscription says where (channel, address), when (cadence, weekday, local send time, time zone) and
how much (max papers, min score) of that profile is delivered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.config import Settings
from service.delivery.schedule import Schedule, ScheduleError, next_send_at
from service.models import Interest, Profile, Subscriber, Subscription

CHANNEL_NAMES = ("email", "slack", "feed")  # feed: feed-only, no email (service/channels/feed.py)
WEEKDAYS = {name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


class SubscriptionError(ValueError):
    """Input that cannot make a subscription; the message names the field and the problem."""


def normalise_email(address: str) -> str:
    """The address in its canonical ASCII form, or SubscriptionError saying what is wrong with it."""
    text = (address or "").strip()
    if not text:
        raise SubscriptionError("email: an address is required")
    try:
        # No DNS lookup (offline and fast); no SMTPUTF8-only local parts, since relays may refuse them.
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriptionError(f"email: {text!r} is not a valid address: {exc}") from exc
    # Lower-cased whole: local parts are case-sensitive on paper, never in practice, and one person
    # must not become two subscribers (the web sign-up lower-cases too).
    return (result.ascii_email or result.normalized).lower()


def parse_weekday(value: str | int | None) -> int | None:
    """ "mon".."sun", "Monday", or 0-6 (0 = Monday)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdecimal():
        day = int(value)
        if not 0 <= day <= 6:
            raise SubscriptionError(f"weekday: {value!r} is not 0-6 (0 = Monday)")
        return day
    key = str(value).strip().lower()[:3]
    if key not in WEEKDAYS:
        raise SubscriptionError(f"weekday: {value!r} is not a day name (mon, tue, ... sun)")
    return WEEKDAYS[key]


def parse_send_time(value: str | dt.time) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError as exc:
        raise SubscriptionError(f"send time: {value!r} is not HH:MM") from exc


@dataclass
class SubscriptionRequest:
    """What a person asks for; validated by `create_subscription`."""

    email: str
    interests: Sequence[str]  # plain words; each becomes an interest named after its text
    query: str | None = None  # query language: filters the interests (alone: an interest itself)
    cadence: str = "daily"
    weekday: str | int | None = None
    send_time: str | dt.time = "08:00"
    timezone: str = "UTC"
    max_papers: int = 10
    min_score: float = 0.0
    channel: str = "email"
    address: str | None = None  # default: the email
    verified: bool = True  # the CLI is the operator; the web form passes False (double opt-in)


def get_or_create_subscriber(session: Session, email: str, *, timezone: str = "UTC") -> Subscriber:
    address = normalise_email(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = Subscriber(email=address, verified=False, timezone=timezone)
        session.add(subscriber)
        session.flush()
    return subscriber


def profile_for(session: Session, subscriber: Subscriber) -> Profile:
    """The subscriber's own profile (the first one they have), created on first use."""
    profile = session.scalar(
        select(Profile).where(Profile.subscriber_id == subscriber.id).order_by(Profile.id).limit(1)
    )
    if profile is None:
        # The web sign-up names profiles the same way (service/web/signup.py).
        profile = Profile(name=f"email:{subscriber.email}"[:200], subscriber_id=subscriber.id)
        session.add(profile)
        session.flush()
    return profile


def interest_texts(words: Sequence[str], query: str | None) -> list[tuple[str, str, str | None]]:
    """(name, keywords, query) of each interest asked for, checked; SubscriptionError names the bad part.

    `-i X -q Q` means "X, filtered by Q": the query constrains every interest given with it. A query
    alone is an interest of its own, named after its text (so lists show what it says).
    """
    from service.profile import ProfileError, validate_query

    wanted = interests_asked(words, query)
    try:
        for name, keywords, _ in wanted:
            if len(name) > 200:
                raise SubscriptionError(f"interest: {name[:40]!r}... is longer than 200 characters")
            if keywords:
                validate_query(name, "interest")
        if wanted and wanted[0][2] is not None:
            validate_query(wanted[0][2])
    except ProfileError as exc:
        raise SubscriptionError(str(exc)) from exc
    if not wanted:
        raise SubscriptionError("interests: give at least one interest (plain words) or a query")
    return wanted


def interests_asked(words: Sequence[str], query: str | None) -> list[tuple[str, str, str | None]]:
    """`interest_texts` without the checks: (name, keywords, query) for input already validated."""
    filter_text = " ".join(query.split()) if query and query.strip() else None
    wanted: list[tuple[str, str, str | None]] = []
    for text in words:
        name = " ".join(text.split())
        if name and name not in [w[0] for w in wanted]:
            wanted.append((name, name, filter_text))
    if not wanted and filter_text is not None:
        wanted.append((filter_text[:200], "", filter_text))
    return wanted


def add_interests(session: Session, profile: Profile, words: Sequence[str], query: str | None) -> list[str]:
    """Add or update the profile's interests as asked (see `interest_texts`); returns their names.

    An interest that already exists takes the keywords and query given now (its exclusions and seed
    papers stay): subscribing again with another --query changes the filter, never keeps the old one.
    """
    wanted = interest_texts(words, query)
    existing = {interest.name: interest for interest in profile.interests}
    for name, keywords, q in wanted:
        interest = existing.get(name)
        if interest is None:
            interest = Interest(name=name, keywords=keywords, query=q)
            profile.interests.append(interest)
            existing[name] = interest
        else:
            interest.keywords = keywords or interest.keywords
            interest.query = q
    session.flush()
    return [name for name, _, _ in wanted]


def _same_subscription(
    session: Session, subscriber: Subscriber, channel: str, address: str, names: Sequence[str]
) -> Subscription | None:
    """The live subscription of this address that already delivers exactly these interests."""
    for subscription in session.scalars(
        select(Subscription)
        .where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.channel == channel,
            Subscription.address == address,
            Subscription.status != "unsubscribed",
        )
        .order_by(Subscription.id)
    ):
        if sorted(subscription.interests or []) == sorted(names):
            return subscription
    return None


def validate_request(request: SubscriptionRequest) -> None:
    """Every rule that depends only on what was asked, never on who exists: SubscriptionError names
    the first one broken. Callers that must not reveal whether an address is known (the web form)
    run it before looking the address up; add new input rules here so they all run in that order."""
    if request.channel not in CHANNEL_NAMES:
        raise SubscriptionError(f"channel: {request.channel!r} is not one of {', '.join(CHANNEL_NAMES)}")
    if not 1 <= request.max_papers <= 100:
        raise SubscriptionError(f"max papers: {request.max_papers} is not between 1 and 100")
    weekday = parse_weekday(request.weekday)
    send_time = parse_send_time(request.send_time)
    if request.cadence == "weekly" and weekday is None:
        raise SubscriptionError("weekday: a weekly digest needs a day (mon ... sun)")
    try:
        Schedule(
            request.cadence, send_time, request.timezone, weekday if request.cadence == "weekly" else None
        )
    except ScheduleError as exc:
        raise SubscriptionError(f"schedule: {exc}") from exc
    normalise_email(request.email)
    if request.channel == "email" and request.address:
        normalise_email(request.address)
    interest_texts(request.interests, request.query)


@dataclass
class SubscribeResult:
    subscription: Subscription
    created: bool  # False: an existing subscription with the same interests was updated


def subscribe(session: Session, request: SubscriptionRequest) -> SubscribeResult:
    """A subscriber (found or created), their profile's interests, and their subscription.

    Asking again for the same interests at the same address updates that subscription (schedule,
    limits, query) instead of adding a second one that would mail the same papers twice.
    """
    validate_request(request)  # refuse bad input before anything is stored
    weekday = parse_weekday(request.weekday)
    send_time = parse_send_time(request.send_time)
    subscriber = get_or_create_subscriber(session, request.email, timezone=request.timezone)
    if request.verified:
        subscriber.verified = True
    address = request.address or subscriber.email
    if request.channel == "email":
        address = normalise_email(address)
    profile = profile_for(session, subscriber)
    names = add_interests(session, profile, request.interests, request.query)
    subscription = _same_subscription(session, subscriber, request.channel, address, names)
    created = subscription is None
    if subscription is None:
        subscription = Subscription(
            subscriber_id=subscriber.id,
            profile_id=profile.id,
            channel=request.channel,
            address=address,
            status="active" if subscriber.verified else "pending",
        )
        session.add(subscription)
    elif subscription.status == "pending" and subscriber.verified:
        subscription.status = "active"
    timing = (request.cadence, weekday if request.cadence == "weekly" else None, send_time, request.timezone)
    if not created and timing != (
        subscription.cadence,
        subscription.weekday,
        subscription.send_time,
        subscription.timezone,
    ):
        subscription.next_digest_at = None  # the dispatcher gives it its next slot on the new timing
    subscription.interests = names
    subscription.cadence, subscription.weekday, subscription.send_time, subscription.timezone = timing
    subscription.max_papers = request.max_papers
    subscription.min_score = request.min_score
    schedule_next_digest(subscription)
    session.flush()
    return SubscribeResult(subscription, created)


def schedule_next_digest(subscription: Subscription, now: dt.datetime | None = None) -> None:
    """Give an active subscription without a slot its next one now, so `paperboy status` shows it at
    once; the dispatcher's pass does the same for any it finds without one (and flags a bad schedule)."""
    if subscription.status != "active" or subscription.paused or subscription.next_digest_at is not None:
        return
    with contextlib.suppress(ScheduleError):  # left to the dispatcher, which notes the reason on it
        subscription.next_digest_at = next_send_at(Schedule.of(subscription), now or dt.datetime.now(dt.UTC))


def create_subscription(session: Session, request: SubscriptionRequest) -> Subscription:
    """`subscribe`, for callers that only need the subscription."""
    return subscribe(session, request).subscription


def subscription_queries(subscription: Subscription) -> dict[str, str]:
    """The query text of each of the subscription's interests that has one, by interest name."""
    names = set(subscription.interests or [])
    return {
        interest.name: interest.query
        for interest in subscription.profile.interests
        if interest.query and (not names or interest.name in names)
    }


def list_subscriptions(
    session: Session, *, email: str | None = None, include_unsubscribed: bool = False
) -> list[Subscription]:
    stmt = (
        select(Subscription)
        .options(selectinload(Subscription.subscriber), selectinload(Subscription.profile))
        .order_by(Subscription.id)
    )
    if email:
        stmt = stmt.join(Subscriber).where(Subscriber.email == normalise_email(email))
    if not include_unsubscribed:
        stmt = stmt.where(Subscription.status != "unsubscribed")
    return list(session.scalars(stmt))


def unsubscribe(session: Session, subscription_id: int, *, subscriber_id: int | None = None) -> Subscription:
    """End one subscription; with `subscriber_id` (from a signed link) it must be theirs."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or (subscriber_id is not None and subscription.subscriber_id != subscriber_id):
        raise SubscriptionError(f"subscription {subscription_id}: no such subscription")
    subscription.status = "unsubscribed"
    subscription.next_digest_at = None
    session.flush()
    return subscription


def set_paused(subscription: Subscription, paused: bool) -> None:
    """Pause or resume one subscription; resuming also clears a noted channel error."""
    subscription.paused = paused
    # Paused: no slot is kept. Resumed: the dispatcher gives it its next slot, and whoever resumes
    # has presumably fixed what made it need attention (a Slack app re-invited, say).
    subscription.next_digest_at = None
    if not paused:
        subscription.needs_attention = None
        schedule_next_digest(subscription)


def pause(session: Session, subscription_id: int, paused: bool) -> Subscription:
    """Pause or resume a subscription by id (an operator's command)."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.status == "unsubscribed":
        raise SubscriptionError(f"subscription {subscription_id}: no such active subscription")
    set_paused(subscription, paused)
    session.flush()
    return subscription


def unsubscribe_all(session: Session, email: str) -> list[Subscription]:
    """End every subscription of an address (the mailto: List-Unsubscribe, or an operator)."""
    ended = list_subscriptions(session, email=email)
    for subscription in ended:
        subscription.status = "unsubscribed"
        subscription.next_digest_at = None
    session.flush()
    return ended


def confirm_subscriber(session: Session, subscriber_id: int) -> list[Subscription]:
    """Double opt-in: the address is verified and its pending subscriptions become active."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise SubscriptionError(f"subscriber {subscriber_id}: no such subscriber")
    subscriber.verified = True
    activated = [s for s in subscriber.subscriptions if s.status == "pending"]
    for subscription in activated:
        subscription.status = "active"
        schedule_next_digest(subscription)
    session.flush()
    return activated


def describe_schedule(subscription: Subscription) -> str:
    return Schedule.of(subscription).describe()


def send_confirmation_email(
    subscriber: Subscriber, subscriptions: Sequence[Subscription], *, settings: Settings
) -> str:
    """The double opt-in email with a signed confirm link; returns its Message-ID."""
    from service.channels.email import send_email
    from service.digest.render import render_email
    from service.links import confirm_url

    rendered = render_email(
        "confirm",
        {
            "email": subscriber.email,
            "confirm_url": confirm_url(subscriber.id, settings),
            # Counted, never shown: whoever filled in the form chose the interests' text, and it must
            # not reach a stranger's inbox from our sender. The preferences page shows them.
            "subscriptions": [
                {"topics": len(s.interests or []), "schedule": describe_schedule(s)} for s in subscriptions
            ],
            "subject": "Confirm your paperboy subscription",
        },
    )
    return send_email(subscriber.email, rendered, settings=settings)
