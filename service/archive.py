"""A subscription's past digests and the papers they held: the queries behind the archive, the
digest's own web page, `paperboy archive` and the admin API.

Only delivered digests count: a digest is in the archive once its delivery is `sent` (or `claimed`,
which a crash after sending leaves behind: the reader may well have it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from service.delivery.retention import delivered_items
from service.digest.compose import item_from_record
from service.digest.model import DigestItem
from service.models import Delivery, Paper

ARCHIVED = ("sent", "claimed")
PAGE_SIZE = 20
MAX_QUERY_TERMS = 8
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class PastDigest:
    """One delivered digest, with its first titles for a listing."""

    delivery_id: int
    period: str
    sent_at: dt.datetime | None
    paper_count: int
    titles: list[str]


@dataclass(frozen=True)
class SentPaper:
    """A paper a subscription was sent, and in which digest."""

    paper_id: int
    title: str
    url: str | None
    period: str
    sent_at: dt.datetime | None
    why: str


def _when(delivery: Delivery) -> dt.datetime:
    return delivery.sent_at or delivery.claimed_at or delivery.created_at


def past_digests(
    session: Session, subscription_id: int, *, limit: int = PAGE_SIZE, offset: int = 0, titles: int = 3
) -> tuple[int, list[PastDigest]]:
    """(total, one page of the subscription's delivered digests, newest first)."""
    where = and_(Delivery.subscription_id == subscription_id, Delivery.status.in_(ARCHIVED))
    total = session.scalar(select(func.count()).select_from(Delivery).where(where)) or 0
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(where)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    ids = [d.id for d in deliveries]
    counts: dict[int, int] = {}
    firsts: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        items = delivered_items()
        counts = dict(
            session.execute(  # type: ignore[arg-type]
                select(items.c.delivery_id, func.count())
                .where(items.c.delivery_id.in_(ids))
                .group_by(items.c.delivery_id)
            ).all()
        )
        rows = session.execute(
            select(items.c.delivery_id, Paper.title)
            .join(Paper, Paper.id == items.c.paper_id)
            .where(items.c.delivery_id.in_(ids), items.c.rank <= titles)
            .order_by(items.c.delivery_id, items.c.rank)
        )
        for delivery_id, title in rows:
            firsts[delivery_id].append(" ".join(title.split()))
    return total, [
        PastDigest(d.id, d.period, _when(d), counts.get(d.id, 0), firsts[d.id]) for d in deliveries
    ]


def archived_delivery(session: Session, subscription_id: int, period: str) -> Delivery | None:
    """The delivered digest of (subscription, period), or None when there is none to show."""
    return session.scalar(
        select(Delivery).where(
            Delivery.subscription_id == subscription_id,
            Delivery.period == period,
            Delivery.status.in_(ARCHIVED),
        )
    )


def digest_items(session: Session, delivery: Delivery) -> list[DigestItem]:
    """The papers the delivery held, as they were sent (titles, reasons, snippets), in their order."""
    items = delivered_items()
    rows = session.execute(
        select(items, Paper.title)
        .join(Paper, Paper.id == items.c.paper_id)
        .where(items.c.delivery_id == delivery.id)
        .order_by(items.c.rank)
    )
    return [item_from_record(row, row.title) for row in rows]


def search_terms(query: str) -> list[str]:
    """The words of a search, lower-cased; a plural's last 's' dropped so "caches" finds "cache"."""
    terms: list[str] = []
    for word in _WORD.findall(query.casefold()):
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        if word not in terms:
            terms.append(word)
    return terms[:MAX_QUERY_TERMS]


def _matches(term: str) -> ColumnElement[bool]:
    return or_(
        func.lower(Paper.title).contains(term, autoescape=True),
        func.lower(Paper.abstract).contains(term, autoescape=True),
    )


def search_sent(
    session: Session, subscription_id: int, query: str, *, limit: int = PAGE_SIZE, offset: int = 0
) -> tuple[int, list[SentPaper]]:
    """(total, one page of) the papers this subscription was sent whose title or abstract holds every
    word of `query`, most recently sent first."""
    terms = search_terms(query)
    if not terms:
        return 0, []
    items = delivered_items()
    where = and_(
        items.c.subscription_id == subscription_id,
        Delivery.status.in_(ARCHIVED),
        *(_matches(term) for term in terms),
    )
    base = (
        select(items, Delivery, Paper)
        .join(Delivery, Delivery.id == items.c.delivery_id)
        .join(Paper, Paper.id == items.c.paper_id)
        .where(where)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Delivery.created_at.desc(), Delivery.id.desc(), items.c.rank)
        .limit(limit)
        .offset(offset)
    ).all()
    found = []
    for row in rows:
        delivery, paper = row.Delivery, row.Paper
        item = item_from_record(row, paper.title)
        found.append(
            SentPaper(
                paper.id, " ".join(paper.title.split()), item.url, delivery.period, _when(delivery), item.why
            )
        )
    return total, found
