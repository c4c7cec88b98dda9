"""The mail_events table's queries: store an event once, note an SMTP-time bounce, and the 7-day rates
that mailbox providers judge a sender by (Gmail/Yahoo: complaints under 0.3%, aim under 0.1%)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import Delivery, MailEvent, Subscription

BOUNCE_WARNING = 0.02  # hard bounces per email sent, over the window
COMPLAINT_WARNING = 0.001  # complaints per email sent
RATE_DAYS = 7
_STATUS = re.compile(r"\b[45]\.\d{1,3}\.\d{1,3}\b")


def insert_once(session: Session, values: dict[str, Any]) -> bool:
    """INSERT the event unless its event_key is stored already; True when it is new."""
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"mail events need PostgreSQL or SQLite, not {dialect}")
    stmt = insert(MailEvent).values(**values).on_conflict_do_nothing(index_elements=["event_key"])
    return session.execute(stmt.returning(MailEvent.id)).scalar_one_or_none() is not None


def note_smtp_bounce(
    session: Session, subscription: Subscription, delivery_id: int, attempt: int, error: str, now: dt.datetime
) -> None:
    """A recipient refused at the SMTP hand-off (5xx) is a hard bounce event too, so that the bounce
    rate counts it; the address itself was already counted by the delivery path."""
    found = _STATUS.search(error)
    insert_once(
        session,
        {
            "kind": "hard_bounce",
            "address": subscription.address.lower()[:320],
            "delivery_id": delivery_id,
            "subscription_id": subscription.id,
            "provider": "smtp",
            "status": found.group(0) if found else "5.0.0",
            "detail": error[:2000],
            "raw_ref": f"delivery {delivery_id} attempt {attempt}",
            "event_key": f"smtp:{delivery_id}:{attempt}",
            "occurred_at": now,
            "created_at": now,
        },
    )


@dataclass(frozen=True)
class MailRates:
    """Email sent and what came back over the last `days` days."""

    days: int
    sent: int
    counts: dict[str, int]
    bounce_rate: float | None  # hard bounces / sent (None: nothing sent)
    complaint_rate: float | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "sent": self.sent,
            "events": self.counts,
            "bounce_rate": self.bounce_rate,
            "complaint_rate": self.complaint_rate,
            "warnings": self.warnings,
        }


def mail_rates(conn: Connection | Session, now: dt.datetime, days: int = RATE_DAYS) -> MailRates:
    since = now - dt.timedelta(days=days)
    sent = conn.execute(
        select(func.count())
        .select_from(Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.channel == "email", Delivery.status == "sent", Delivery.sent_at >= since)
    ).scalar_one()
    by_kind = (
        select(MailEvent.kind, func.count()).where(MailEvent.occurred_at >= since).group_by(MailEvent.kind)
    )
    counts = {kind: count for kind, count in conn.execute(by_kind).all()}
    hard, complaints = counts.get("hard_bounce", 0), counts.get("complaint", 0)
    bounce_rate = hard / sent if sent else None
    complaint_rate = complaints / sent if sent else None
    warnings = []
    if bounce_rate is not None and bounce_rate > BOUNCE_WARNING:
        warnings.append(
            f"bounce rate {bounce_rate:.2%} over {days} days is above {BOUNCE_WARNING:.0%}: "
            "clean the list (flagged addresses get no more mail) and check how addresses are collected"
        )
    if complaint_rate is not None and complaint_rate > COMPLAINT_WARNING:
        warnings.append(
            f"complaint rate {complaint_rate:.2%} over {days} days is above {COMPLAINT_WARNING:.1%} "
            "(Gmail and Yahoo reject bulk mail from senders above 0.3%)"
        )
    if not sent and (hard or complaints):
        warnings.append(f"{hard} bounce(s) and {complaints} complaint(s) but no email sent in {days} days")
    return MailRates(days, sent, counts, bounce_rate, complaint_rate, warnings)
