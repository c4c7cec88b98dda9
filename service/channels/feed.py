"""Feeds, a third way to read: a private Atom / RSS 2.0 feed per subscription (feedgen).

The feed holds one entry per paper the subscription was delivered, with its reason, newest first:
the papers of its sent digests (delivery_papers, unique per subscription and paper, so a paper is in
the feed once and only what passed the cut-off is there). A subscription whose channel is "feed" is
feed-only: FeedChannel "sends" by recording, so the delivery core's claim/record/mark bookkeeping is
exactly the email one, and the feed shows the papers once the delivery is marked sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from feedgen.feed import FeedGenerator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.delivery.retention import delivered_items
from service.digest.compose import item_from_record
from service.digest.model import Digest
from service.digest.render import safe_url
from service.models import Delivery, Paper, Subscription

FEED_ENTRIES = 100
FORMATS = ("atom", "rss")


class FeedChannel:
    """The "feed" channel: nothing leaves paperboy; the delivered papers are the feed's entries."""

    name = "feed"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, subscription: Subscription, digest: Digest) -> str:
        return f"feed:{digest.period}:{len(digest.items)}"

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class FeedVersion:
    """What a conditional GET compares: a strong ETag and the newest delivery's time."""

    etag: str
    last_modified: dt.datetime | None


def feed_version(session: Session, subscription: Subscription, fmt: str) -> FeedVersion:
    items = delivered_items()
    count, newest, last_id = session.execute(
        select(func.count(), func.max(Delivery.sent_at), func.max(Delivery.id))
        .select_from(items)
        .join(Delivery, Delivery.id == items.c.delivery_id)
        .where(items.c.subscription_id == subscription.id, Delivery.status == "sent")
    ).one()
    seed = f"{subscription.id}:{fmt}:{count}:{last_id}:{newest}:{subscription.updated_at}"
    return FeedVersion('"' + hashlib.sha256(seed.encode()).hexdigest()[:32] + '"', newest)


def build_feed(
    session: Session, subscription: Subscription, fmt: str, *, self_url: str, home_url: str
) -> bytes:
    """The feed document: the newest FEED_ENTRIES delivered papers, with their reasons."""
    items = delivered_items()
    rows = session.execute(
        select(items, Paper.title, Delivery.sent_at, Delivery.period)
        .join(Delivery, Delivery.id == items.c.delivery_id)
        .join(Paper, Paper.id == items.c.paper_id)
        .where(items.c.subscription_id == subscription.id, Delivery.status == "sent")
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc(), items.c.rank.desc())
        .limit(FEED_ENTRIES)
    ).all()
    topics = ", ".join(str(n) for n in subscription.interests or []) or "your interests"
    fg = FeedGenerator()
    fg.id(f"urn:paperboy:subscription:{subscription.id}")
    fg.title(f"paperboy: {topics}")
    fg.subtitle(f"New research papers on {topics}, as delivered to this subscription.")
    fg.link(href=self_url, rel="self")
    fg.link(href=home_url, rel="alternate")
    fg.language("en")
    newest = rows[0].sent_at if rows else subscription.created_at
    fg.updated(newest)
    # feedgen puts entries in the order they are added, at the front: add the oldest first.
    for record in reversed(rows):
        sent_at, period = record.sent_at, record.period
        item = item_from_record(record, record.title)
        entry = fg.add_entry()
        entry.id(f"urn:paperboy:subscription:{subscription.id}:paper:{record.paper_id}")
        entry.title(" ".join(item.title.split()))
        link = safe_url(item.url)
        if link:
            entry.link(href=link)
        for name in item.authors[:10]:
            entry.author(name=" ".join(str(name).split()) or "unknown")
        summary = item.why or "matched your interests"
        if item.tldr:
            summary = f"{item.tldr} — Why: {summary}"
        entry.summary(summary)
        entry.published(sent_at)
        entry.updated(sent_at)
        entry.category(term=period)
    return fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
