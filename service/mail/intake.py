"""Reports that came back, stored as mail events and acted on (one place for every route in:
`paperboy bounces ingest`, `paperboy inbound`, the provider webhooks).

- hard bounce: counted against the address; it is flagged at HARD_BOUNCE_LIMIT, as an SMTP 5xx is.
- soft bounce: stored; soft bounces on SOFT_BOUNCE_LIMIT different days within SOFT_BOUNCE_DAYS flag
  the address (a flurry of deferrals of one message is one day).
- complaint: every subscription of the address ends at once.
- unsubscribe: the subscription its signed token names ends; an unsigned, tampered or misdirected
  token does nothing but a 'refused' event and a warning in the log.
Each event is stored once per event_key: a report ingested twice, or a webhook redelivered, has no
second effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.delivery.records import count_hard_bounce
from service.mail.bounce_path import read_return_path
from service.mail.events import insert_once
from service.mail.reports import Report, read_mail
from service.models import Delivery, MailEvent, Subscriber, Subscription
from service.oplog import log_event
from service.subscription import normalise_email, unsubscribe, unsubscribe_all
from service.tokens import TokenError, read_token

log = logging.getLogger("paperboy.mail")

_DIGEST_MESSAGE_ID = re.compile(
    r"^<digest\.([0-9]{1,12})\.([A-Za-z0-9._-]{1,40})@[^<>@\s]+>$"
)  # email.digest_message_id
KINDS = ("hard_bounce", "soft_bounce", "complaint", "delivered", "unsubscribe", "refused")


@dataclass(frozen=True)
class Recorded:
    """What became of one report: stored (or a duplicate), and what it did."""

    kind: str
    address: str
    delivery_id: int | None
    duplicate: bool
    effect: str  # words: "address flagged", "2 subscriptions ended", "" ...


def record(
    session: Session, report: Report, *, settings: Settings, raw_ref: str, now: dt.datetime
) -> Recorded:
    """Store one report as a mail event and apply its effect (in the caller's transaction)."""
    delivery = _delivery_for(session, report, settings)
    subscription = session.get(Subscription, delivery.subscription_id) if delivery is not None else None
    kind, address, effect_of = report.kind, report.address, ""
    refused_why = ""
    if kind == "unsubscribe":
        subscription, refused_why = _token_subscription(session, report.token or "", settings)
        if subscription is None:
            kind = "refused"
    if (
        subscription is not None
        and subscription.channel == "email"
        and (not address or kind == "unsubscribe")
    ):
        address = subscription.address.lower()  # an unsubscribe request may come from a forwarding address
    key = _event_key(report, kind, address)
    values = {
        "kind": kind,
        "address": address[:320],
        "delivery_id": delivery.id if delivery is not None else None,
        "subscription_id": subscription.id if subscription is not None else None,
        "provider": report.provider,
        "status": report.status,
        "detail": (refused_why or report.detail)[:2000],
        "raw_ref": raw_ref[:500],
        "event_key": key,
        "occurred_at": now,
        "created_at": now,
    }
    if not insert_once(session, values):
        return Recorded(kind, address, values["delivery_id"], True, "already recorded")  # type: ignore[arg-type]
    if kind == "hard_bounce":
        effect_of = _hard_bounce(session, address, settings, now)
    elif kind == "soft_bounce":
        effect_of = _soft_bounce(session, address, settings, now)
    elif kind == "complaint":
        ended = unsubscribe_all(session, address) if address else []
        effect_of = f"{len(ended)} subscription(s) ended" if address else "address unknown: nothing ended"
    elif kind == "unsubscribe" and subscription is not None:
        unsubscribe(session, subscription.id)
        effect_of = f"subscription {subscription.id} ended"
    elif kind == "refused":
        log_event(
            log,
            "unsubscribe_refused",
            level=logging.WARNING,
            sender=report.sender,
            why=refused_why,
            ref=raw_ref,
        )
    session.flush()
    log_event(
        log,
        "mail_event",
        kind=kind,
        provider=report.provider,
        address=address,
        delivery=values["delivery_id"],
        status=report.status,
        effect=effect_of,
    )
    return Recorded(kind, address, values["delivery_id"], False, effect_of)  # type: ignore[arg-type]


def _event_key(report: Report, kind: str, address: str) -> str:
    ident = f"{report.provider}|{report.report_id}|{kind}|{address}|{report.token or ''}"
    return f"{report.provider}:{hashlib.sha256(ident.encode('utf-8')).hexdigest()[:48]}"


def _delivery_for(session: Session, report: Report, settings: Settings) -> Delivery | None:
    """The delivery a report is about: its VERP return path first, then the original Message-ID."""
    for address in report.return_paths:
        ref = read_return_path(address, settings)
        if ref is None:
            continue
        found = session.scalar(
            select(Delivery).where(
                Delivery.subscription_id == ref.subscription_id, func.lower(Delivery.period) == ref.period
            )
        )
        if found is not None:
            return found
    message_id = report.original_message_id
    if not message_id:
        return None
    # A digest's Message-ID names its (subscription, period): that lookup uses the unique index, where
    # deliveries.message_id has none.
    query = select(Delivery).where(Delivery.message_id == message_id).limit(1)
    ours = _DIGEST_MESSAGE_ID.match(message_id)
    if ours is not None:
        found = session.scalar(
            query.where(Delivery.subscription_id == int(ours[1]), Delivery.period == ours[2])
        )
        if found is not None:
            return found
    return session.scalar(query)  # a period the Message-ID had to spell differently


def _token_subscription(session: Session, token: str, settings: Settings) -> tuple[Subscription | None, str]:
    """The subscription an unsubscribe token names, or None and why (the same rules as the web link)."""
    try:
        claims = read_token("unsubscribe", token, settings=settings)
    except TokenError as exc:
        return None, str(exc)
    subscription = session.get(Subscription, claims.subscription_id) if claims.subscription_id else None
    if (
        subscription is None
        or (claims.subscriber_id or None) != subscription.subscriber_id
        or claims.issued_at.timestamp() < int(subscription.created_at.timestamp())
    ):
        return None, "the token names no subscription of its subscriber"
    return subscription, ""


def _subscriber(session: Session, address: str) -> Subscriber | None:
    if not address:
        return None
    try:
        email = normalise_email(address)
    except ValueError:
        email = address.lower()
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def _hard_bounce(session: Session, address: str, settings: Settings, now: dt.datetime) -> str:
    subscriber = _subscriber(session, address)
    if subscriber is None:
        return "no subscriber has this address"
    count_hard_bounce(session, subscriber.id, settings.hard_bounce_limit)
    # A report arrives after the hand-off, and every accepted hand-off resets the subscriber's streak:
    # so the streak here is the hard bounce events since the address last had mail delivered.
    last_delivered = session.scalar(
        select(func.max(MailEvent.occurred_at)).where(
            MailEvent.address == address, MailEvent.kind == "delivered"
        )
    )
    streak = session.scalar(
        select(func.count())
        .select_from(MailEvent)
        .where(MailEvent.address == address, MailEvent.kind == "hard_bounce")
        .where(MailEvent.occurred_at > (last_delivered or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))
    )
    if (streak or 0) >= settings.hard_bounce_limit:
        session.execute(update(Subscriber).where(Subscriber.id == subscriber.id).values(flagged=True))
    session.refresh(subscriber)
    return (
        "address flagged" if subscriber.flagged else f"hard bounce {streak} of {settings.hard_bounce_limit}"
    )


def _soft_bounce(session: Session, address: str, settings: Settings, now: dt.datetime) -> str:
    subscriber = _subscriber(session, address)
    if subscriber is None:
        return "no subscriber has this address"
    since = now - dt.timedelta(days=settings.soft_bounce_days)
    # Days with a soft bounce, not reports: a provider reports every deferred retry of one message
    # (SendGrid, a DSN per delay), and one slow day is not a dead mailbox.
    moments = session.scalars(
        select(MailEvent.occurred_at).where(
            MailEvent.kind == "soft_bounce", MailEvent.address == address, MailEvent.occurred_at >= since
        )
    )
    days = len({moment.date() for moment in moments})
    if days >= settings.soft_bounce_limit:
        session.execute(update(Subscriber).where(Subscriber.id == subscriber.id).values(flagged=True))
        return f"address flagged: soft bounces on {days} days within {settings.soft_bounce_days}"
    return f"soft bounces on {days} of {settings.soft_bounce_limit} days"


@dataclass(frozen=True)
class Taken:
    """One returned message: what it said (or why nothing) and what each report did."""

    ref: str
    recorded: list[Recorded]
    why: str = ""


def take_in(
    session: Session,
    data: bytes,
    *,
    settings: Settings,
    ref: str,
    now: dt.datetime,
    recipients: tuple[str, ...] = (),
) -> Taken:
    """Read one returned message and record every report in it."""
    reading = read_mail(data, settings, recipients=recipients)
    recorded = [record(session, r, settings=settings, raw_ref=ref, now=now) for r in reading.reports]
    return Taken(ref, recorded, reading.why)
