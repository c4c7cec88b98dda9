"""A Slack channel's subscriptions and profile: what `/paperboy`, its buttons and `paperboy slack` change.

A channel has one profile, `slack:<channel id>` (a webhook: `slack-webhook:<name>`), holding the
interests of all its subscriptions and the feedback its members give with the digest buttons. Each
`subscribe` makes one subscription (one digest) for one interest; the commands only ever see the
subscriptions of the channel they are run in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.config import Settings
from service.delivery.schedule import Schedule, ScheduleError
from service.models import Feedback, Interest, Paper, Profile, Subscription
from service.profile import ProfileError, record_feedback, validate_query
from service.secrets import seal
from service.subscription import SubscriptionError, add_interests, parse_send_time, parse_weekday
from service.subscription import set_paused as set_one_paused
from service.tokens import TokenError, read_token

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
MAX_INTEREST = 200


def channel_profile_name(channel_id: str) -> str:
    return f"slack:{channel_id}"


def webhook_profile_name(name: str) -> str:
    return f"slack-webhook:{name}"


def check_channel_id(channel_id: str) -> str:
    value = (channel_id or "").strip()
    if not _CHANNEL_ID.match(value):
        raise SubscriptionError(f"channel: {channel_id!r} is not a Slack channel id (like C0123ABCD)")
    return value


def get_profile(session: Session, name: str) -> Profile:
    """The named channel profile, created on first use."""
    profile = session.scalar(select(Profile).where(Profile.name == name))
    if profile is None:
        profile = Profile(name=name[:200])
        session.add(profile)
        session.flush()
    return profile


@dataclass
class SlackSubscribe:
    """A channel asking for a digest on one interest (the slash command or `paperboy slack subscribe`)."""

    channel_id: str  # the channel id to post to (bot token), or the webhook's name
    interest: str  # plain words, as in the web form: `sparse attention, "kv cache"^2`
    webhook_url: str | None = None  # post through this incoming webhook instead of a bot token
    bot_token: str | None = None  # a token of its own instead of SLACK_BOT_TOKEN
    cadence: str = "daily"
    weekday: str | int | None = None
    send_time: str | dt.time = "08:00"
    timezone: str = "UTC"
    max_papers: int = 10
    team_id: str | None = None  # the workspace that asked (slash command, modal): its installation posts
    enterprise_id: str | None = None
    query: str | None = None  # an optional query (query language), checked like the CLI's


def _checked(request: SlackSubscribe) -> tuple[str, str | None, int | None, dt.time]:
    """(interest words, query, weekday, send time) of a valid request; SubscriptionError otherwise."""
    interest = " ".join(request.interest.split())
    query = (request.query or "").strip() or None
    if not interest and not query:
        raise SubscriptionError("interest: say what the channel wants to read about")
    if len(interest) > MAX_INTEREST:
        raise SubscriptionError(f"interest: at most {MAX_INTEREST} characters")
    if query is not None:
        try:
            validate_query(query)
        except ProfileError as exc:
            raise SubscriptionError(str(exc)) from exc
    if not 1 <= request.max_papers <= 100:
        raise SubscriptionError(f"max papers: {request.max_papers} is not between 1 and 100")
    weekday = parse_weekday(request.weekday)
    send_time = parse_send_time(request.send_time)
    try:
        Schedule(
            request.cadence, send_time, request.timezone, weekday if request.cadence == "weekly" else None
        )
    except ScheduleError as exc:
        raise SubscriptionError(f"schedule: {exc}") from exc
    return interest, query, weekday, send_time


def interest_name(words: str, query: str | None) -> str:
    """The profile interest a subscription reads: its words, marked by its query when it has one."""
    if query is None:
        return words
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()[:8]
    return f"{words[:180] or 'query'} [query {digest}]"


def _ensure_interest(session: Session, profile: Profile, name: str, words: str, query: str | None) -> None:
    if query is None:
        add_interests(session, profile, [words], None)
        return
    if all(i.name != name for i in profile.interests):
        profile.interests.append(Interest(name=name, keywords=words, query=query))
        session.flush()


def subscribe(session: Session, request: SlackSubscribe, settings: Settings) -> tuple[Subscription, bool]:
    """(subscription, created): the channel's live subscription to this interest, or a new one."""
    interest, query, weekday, send_time = _checked(request)
    secret = None
    if request.webhook_url:
        if not request.webhook_url.startswith(("https://", "http://")):
            raise SubscriptionError("webhook: the URL must start with https://")
        address = request.channel_id.strip()
        if not address or len(address) > 100:
            raise SubscriptionError("webhook: give it a name of 1-100 characters")
        profile = get_profile(session, webhook_profile_name(address))
        secret = seal(request.webhook_url, settings)
    else:
        address = check_channel_id(request.channel_id)
        profile = get_profile(session, channel_profile_name(address))
        if request.bot_token:
            secret = seal(request.bot_token, settings)
    name = interest_name(interest, query)
    existing = [s for s in channel_subscriptions(session, address) if s.interests == [name]]
    if existing:
        return existing[0], False
    _ensure_interest(session, profile, name, interest, query)
    subscription = Subscription(
        subscriber_id=None,
        profile_id=profile.id,
        channel="slack",
        address=address,
        secret=secret,
        interests=[name],
        cadence=request.cadence,
        weekday=weekday if request.cadence == "weekly" else None,
        send_time=send_time,
        timezone=request.timezone,
        max_papers=request.max_papers,
        status="active",
        slack_team_id=request.team_id,
        slack_enterprise_id=request.enterprise_id,
    )
    session.add(subscription)
    session.flush()
    return subscription, True


def update(session: Session, subscription_id: int, request: SlackSubscribe) -> Subscription:
    """Change one of the channel's subscriptions (the modal's edit): interest, query, schedule, size."""
    interest, query, weekday, send_time = _checked(request)
    (sub,) = _chosen(session, check_channel_id(request.channel_id), subscription_id)
    name = interest_name(interest, query)
    _ensure_interest(session, sub.profile, name, interest, query)
    sub.interests = [name]
    sub.cadence = request.cadence
    sub.weekday = weekday if request.cadence == "weekly" else None
    sub.send_time = send_time
    sub.timezone = request.timezone
    sub.max_papers = request.max_papers
    sub.next_digest_at = None  # the dispatcher gives it its next slot on the new schedule
    session.flush()
    return sub


def channel_subscriptions(session: Session, address: str) -> list[Subscription]:
    """The live Slack subscriptions posting to this channel id (or webhook name), oldest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(
                Subscription.channel == "slack",
                Subscription.address == address,
                Subscription.status != "unsubscribed",
            )
            .options(selectinload(Subscription.profile))
            .order_by(Subscription.id)
        )
    )


def _chosen(session: Session, address: str, subscription_id: int | None) -> list[Subscription]:
    subs = channel_subscriptions(session, address)
    if subscription_id is None:
        return subs
    chosen = [s for s in subs if s.id == subscription_id]
    if not chosen:  # another channel's subscription is not this channel's business
        raise SubscriptionError(f"subscription {subscription_id}: this channel has no such subscription")
    return chosen


def set_paused(
    session: Session, address: str, paused: bool, subscription_id: int | None = None
) -> list[Subscription]:
    """Pause or resume the channel's subscriptions (or one); resuming also clears a noted error."""
    changed = _chosen(session, address, subscription_id)
    for sub in changed:
        set_one_paused(sub, paused)
    session.flush()
    return changed


def unsubscribe(session: Session, address: str, subscription_id: int) -> Subscription:
    (sub,) = _chosen(session, address, subscription_id)
    sub.status = "unsubscribed"
    sub.next_digest_at = None
    session.flush()
    return sub


@dataclass(frozen=True)
class ButtonVerdict:
    feedback: Feedback
    paper_title: str


def record_button(session: Session, value: str, settings: Settings) -> ButtonVerdict:
    """Feedback from a digest button's signed value; TokenError when forged, expired or orphaned."""
    claims = read_token("slack-action", value, settings=settings)
    paper_id, relevant = claims.extra.get("paper"), claims.extra.get("relevant")
    if not isinstance(paper_id, int) or not isinstance(relevant, bool) or claims.subscription_id is None:
        raise TokenError("this button is not valid")
    sub = session.get(Subscription, claims.subscription_id)
    paper = session.get(Paper, paper_id)
    if sub is None or sub.channel != "slack" or paper is None:
        raise TokenError("this button's subscription or paper no longer exists")
    feedback = record_feedback(session, sub.profile, paper_id, relevant, "slack")
    return ButtonVerdict(feedback, paper.title)
