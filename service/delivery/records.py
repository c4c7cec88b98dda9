"""The deliveries table's queries: claim a (subscription, period), record its papers, mark the outcome.

Every write is a single conditional statement, so two instances can never both own a delivery: a new
claim is an INSERT that does nothing on the unique (subscription_id, period) conflict, a retry is
re-claimed by an UPDATE ... WHERE status = 'retry' AND next_attempt_at <= now, and outcomes are only
written over a row still 'claimed'. service.delivery decides what to do; this module only says it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.digest.compose import digest_from_record, item_record
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Paper, Subscriber, Subscription, UTCDateTime


@dataclass(frozen=True)
class Claimed:
    """A delivery this instance now owns, with the digest it holds."""

    delivery_id: int
    attempts: int
    digest: Digest
    status: str  # claimed | empty (an empty period is done at once)


def find(session: Session, subscription_id: int, period: str) -> Delivery | None:
    return session.scalar(
        select(Delivery).where(Delivery.subscription_id == subscription_id, Delivery.period == period)
    )


def retry_is_due(delivery: Delivery, now: dt.datetime) -> bool:
    return delivery.status == "retry" and (
        delivery.next_attempt_at is None or delivery.next_attempt_at <= now
    )


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


def insert_for_dialect(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"deliveries need PostgreSQL or SQLite, not {dialect}")
    return insert


def _insert_unless_taken(session: Session, values: dict[str, object]) -> int | None:
    """INSERT the delivery row; None when (subscription, period) already has one."""
    stmt = (
        insert_for_dialect(session.get_bind().dialect.name)(Delivery)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["subscription_id", "period"])
        .returning(Delivery.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def claim_new(
    session: Session,
    sub: Subscription,
    period: str,
    digest: Digest,
    *,
    now: dt.datetime,
    instance: str,
    empty: bool,
) -> Claimed | None:
    """Claim a period never attempted and record its papers (IntegrityError if one is taken)."""
    status = "empty" if empty else "claimed"
    attempts = 0 if empty else 1
    values: dict[str, object] = {
        "subscription_id": sub.id,
        "period": period,
        "status": status,
        "attempts": attempts,
        "claimed_by": instance,
        "claimed_at": now,
        "created_at": now,  # the digest window of the next period starts here
        "updated_at": now,
    }
    delivery_id = _insert_unless_taken(session, values)
    if delivery_id is None:
        return None
    ids = [item.paper_id for item in digest.items]
    seen = dict(session.execute(select(Paper.id, Paper.first_seen_at).where(Paper.id.in_(ids))).all())
    session.add_all(
        DeliveryPaper(
            delivery_id=delivery_id,
            subscription_id=sub.id,
            paper_id=item.paper_id,
            rank=rank,
            score=item.score,
            reason=item_record(item),
            paper_seen_at=seen.get(item.paper_id),
        )
        for rank, item in enumerate(digest.items, start=1)
    )
    session.flush()  # the unique (subscription_id, paper_id) check happens here
    return Claimed(delivery_id, attempts, digest, status)


def claim_retry(
    session: Session, sub: Subscription, period: str, *, now: dt.datetime, settings: Settings, instance: str
) -> Claimed | None:
    """Take a due 'retry' row; its digest is rebuilt from the papers recorded at the first claim."""
    row = session.execute(
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
    if row is None:
        return None
    delivery = session.get_one(Delivery, row.id)
    digest = digest_from_record(session, sub, delivery, now=now, settings=settings)
    return Claimed(row.id, row.attempts, digest, "claimed")


def mark_sent(
    factory: sessionmaker[Session], sub: Subscription, delivery_id: int, message_id: str, *, now: dt.datetime
) -> None:
    """Record a successful send (a hard-bounce streak ends with it)."""
    subscriber = sub.subscriber_id if sub.channel == "email" else None
    with factory() as session, session.begin():
        mark_sent_now(session.connection(), delivery_id, message_id, now=now)
        note_sent(session, [Sent(delivery_id, sub.id, subscriber, message_id)], now=now)


_MARK_SENT = (
    update(Delivery)
    .where(Delivery.id == bindparam("b_delivery"), Delivery.status == "claimed")
    .values(status="sent", message_id=bindparam("b_message_id"), sent_at=bindparam("b_at"), last_error=None)
    .values(updated_at=bindparam("b_at"))
)


# The same UPDATE for PostgreSQL, sent by psycopg as a server-side prepared statement: it runs once per
# digest, and SQLAlchemy's execution path cost ten times the statement's own round trip (deliver_bench).
_MARK_SENT_PG = (
    "UPDATE deliveries SET status = 'sent', message_id = %s, sent_at = %s, updated_at = %s, last_error = NULL"
    " WHERE id = %s AND status = 'claimed'"
)


def mark_sent_now(conn: Connection, delivery_id: int, message_id: str, *, now: dt.datetime) -> None:
    """The delivery is 'sent' (only a row still 'claimed'): written as soon as the channel took it, so a
    crash can leave at most the digest in flight unmarked."""
    if conn.dialect.name == "postgresql":
        at = UTCDateTime().process_bind_param(now, conn.dialect)
        with conn.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(_MARK_SENT_PG, (message_id[:300], at, at, delivery_id), prepare=True)
        return
    conn.execute(_MARK_SENT, {"b_delivery": delivery_id, "b_message_id": message_id[:300], "b_at": now})


@dataclass(frozen=True)
class Sent:
    """A delivery that went out."""

    delivery_id: int
    subscription_id: int
    subscriber_id: int | None  # an email subscription's address: its hard-bounce streak ends
    message_id: str


def note_sent(session: Session, sent: Sequence[Sent], *, now: dt.datetime) -> None:
    """What sends change besides their delivery rows, in two UPDATEs however many there are: the
    subscriptions' last_sent_at, and the end of their addresses' hard-bounce streaks."""
    if not sent:
        return
    session.execute(
        update(Subscription)
        .where(Subscription.id.in_({s.subscription_id for s in sent}))
        .values(last_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    subscribers = {s.subscriber_id for s in sent if s.subscriber_id is not None}
    if subscribers:  # only streaks to end: most addresses have none, and an UPDATE is a new row version
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(subscribers), Subscriber.hard_bounces != 0)
            .values(hard_bounces=0)
            .execution_options(synchronize_session=False)
        )


def mark_unsent(
    session: Session, delivery_id: int, *, error: str, next_attempt_at: dt.datetime | None, now: dt.datetime
) -> None:
    """'retry' at next_attempt_at, or 'failed' (None): a failed delivery's papers are released so the
    subscription's next digest can hold them."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "claimed")
        .values(
            status="retry" if next_attempt_at else "failed",
            last_error=error,
            next_attempt_at=next_attempt_at,
            updated_at=now,
        )
    )
    if next_attempt_at is None:
        session.execute(delete(DeliveryPaper).where(DeliveryPaper.delivery_id == delivery_id))


def count_hard_bounce(session: Session, subscriber_id: int, limit: int) -> None:
    """One more hard bounce; the address is flagged (no more digests) at `limit`."""
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .values(hard_bounces=Subscriber.hard_bounces + 1)
    )
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.hard_bounces >= limit)
        .values(flagged=True)
    )


def flag_needs_attention(session: Session, subscription_id: int, error: str) -> None:
    session.execute(
        update(Subscription).where(Subscription.id == subscription_id).values(needs_attention=error)
    )


def retries_due(session: Session, now: dt.datetime, limit: int | None = 500) -> list[tuple[int, str]]:
    """(subscription id, period) of the deliveries whose retry has come, oldest first (None: all)."""
    rows = session.execute(
        select(Delivery.subscription_id, Delivery.period)
        .where(Delivery.status == "retry", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    return [(row.subscription_id, row.period) for row in rows]


def resolve_stuck(session: Session, delivery_id: int, *, was_sent: bool, now: dt.datetime) -> Delivery:
    """An operator's verdict on a delivery left 'claimed' by a crash between sending and marking.

    paperboy never guesses here (a guess either loses a digest or sends it twice): the operator checks
    the mail log or the Slack channel, then marks it sent, or makes it a retry due now, which sends the
    same recorded papers under the same Message-ID.
    """
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"delivery {delivery_id}: no such delivery")
    if delivery.status != "claimed":
        raise LookupError(f"delivery {delivery_id} is {delivery.status!r}, not 'claimed': nothing to resolve")
    if was_sent:
        delivery.status = "sent"
        delivery.sent_at = now
        delivery.message_id = delivery.message_id or "marked sent by an operator"
    else:
        delivery.status = "retry"
        delivery.next_attempt_at = now
        delivery.last_error = "resent by an operator after a crash left it claimed"
    session.flush()
    return delivery
