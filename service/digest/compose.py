"""Choose the papers of one subscription's digest for one period, and build the Digest.

The candidates are the papers first seen since the subscription's last digest (or within a lookback
window before its first one) that no earlier digest to the same address holds; the profile's ranker
orders them, `min_score` and `max_papers` cut the list. Nothing here writes: service.delivery records
what a delivery holds, and `digest_from_record` rebuilds exactly that digest for a retry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, overload

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.model import Digest, DigestItem, DigestLinks, Segment
from service.digest.popularity import best_of_week_order, trending_order
from service.digest.tldr import tldr
from service.links import archive_url, digest_url, feedback_url, follow_url, manage_url, unsubscribe_url
from service.models import Delivery, DeliveryPaper, Paper, Profile, Subscription
from service.secrets import keys_read_once

# A subscription paused for months does not get a digest ranked over months of papers: the window
# never reaches further back than this.
MAX_WINDOW = dt.timedelta(days=35)
# Deliveries whose window counts as covered; a failed delivery released its papers, so its window is
# offered again.
_WINDOW_STATUSES = ("claimed", "sent", "retry", "empty")
_TOPIC_NAMES = 2


class Ranker(Protocol):
    """service.digest.rank.rank_papers: the papers a profile matches, best first, with reasons."""

    def __call__(
        self, session: Session, profile: Profile, papers: Sequence[Paper], *, interests: list[str] | None
    ) -> list[DigestItem]: ...


def default_ranker(settings: Settings | None = None) -> Ranker:
    """service.digest.rank.rank_papers, bound to `settings` when given (else it reads the process's)."""
    from service.digest.rank import rank_papers  # imported late: matching pulls in heavier modules

    return functools.partial(rank_papers, settings=settings) if settings is not None else rank_papers


def window_start(
    session: Session, subscription: Subscription, *, now: dt.datetime, settings: Settings
) -> dt.datetime:
    """Papers first seen after this instant are new for the subscription."""
    return window_starts(session, [subscription.id], now=now, settings=settings)[subscription.id]


def window_starts(
    session: Session, subscription_ids: Sequence[int], *, now: dt.datetime, settings: Settings
) -> dict[int, dt.datetime]:
    """window_start for many subscriptions in two index range reads.

    The window never starts before now - MAX_WINDOW, so only deliveries created since then are read
    (ix_deliveries_subscription_id_created_at): a subscription's years of history cost nothing. A
    subscription with none of those is either new (the lookback) or was paused longer than
    MAX_WINDOW (the floor); one more query over those few subscriptions tells which.
    """
    floor = now - MAX_WINDOW
    covered = Delivery.status.in_(_WINDOW_STATUSES)
    last = dict(
        session.execute(  # type: ignore[arg-type]
            select(Delivery.subscription_id, func.max(Delivery.created_at))
            .where(Delivery.subscription_id.in_(subscription_ids), Delivery.created_at > floor, covered)
            .group_by(Delivery.subscription_id)
        ).all()
    )
    lookback = max(now - dt.timedelta(days=settings.digest_lookback_days), floor)
    unseen = [sid for sid in subscription_ids if sid not in last]
    older: set[int] = set()
    if unseen and lookback > floor:
        older = set(
            session.scalars(
                select(Delivery.subscription_id)
                .where(Delivery.subscription_id.in_(unseen), Delivery.created_at <= floor, covered)
                .distinct()
            )
        )
    return {
        sid: max(last[sid], floor) if sid in last else (floor if sid in older else lookback)
        for sid in subscription_ids
    }


def candidate_papers(
    session: Session, subscription: Subscription, *, now: dt.datetime, settings: Settings
) -> list[Paper]:
    """New papers for the subscription that no digest to its address has held.

    Every subscription of the same channel and address counts, not only this one: two subscriptions
    whose interests overlap never mail one paper twice to one inbox.
    """
    since = window_start(session, subscription, now=now, settings=settings)
    same_inbox = select(Subscription.id).where(
        Subscription.channel == subscription.channel, Subscription.address == subscription.address
    )
    already = select(DeliveryPaper.paper_id).where(
        DeliveryPaper.subscription_id.in_(same_inbox), DeliveryPaper.paper_seen_at > since
    )
    stmt = (
        select(Paper)
        .where(Paper.first_seen_at > since, Paper.first_seen_at <= now, Paper.id.not_in(already))
        .order_by(Paper.id)
    )
    return list(session.scalars(stmt))


class Candidates(Sequence[Paper]):
    """A subscription's candidates drawn from papers already loaded for many (a pass's pool): the
    pool's papers minus those the subscription's inbox already got, looked up by id without a copy."""

    def __init__(
        self, papers: Sequence[Paper], by_id: Mapping[int, Paper], left_out: AbstractSet[int]
    ) -> None:
        self.pool = papers
        self.by_id = by_id
        self.left_out = frozenset(i for i in left_out if i in by_id)
        self._papers: list[Paper] | None = None

    def get(self, paper_id: int) -> Paper | None:
        return None if paper_id in self.left_out else self.by_id.get(paper_id)

    def _list(self) -> list[Paper]:
        if self._papers is None:
            self._papers = (
                [p for p in self.pool if p.id not in self.left_out] if self.left_out else list(self.pool)
            )
        return self._papers

    def __len__(self) -> int:
        return len(self.pool) - len(self.left_out)

    @overload
    def __getitem__(self, index: int) -> Paper: ...
    @overload
    def __getitem__(self, index: slice) -> list[Paper]: ...
    def __getitem__(self, index: int | slice) -> Paper | list[Paper]:
        return self._list()[index]

    def __iter__(self) -> Iterator[Paper]:
        return iter(self._list())


def candidate_lookup(papers: Sequence[Paper]) -> Callable[[int], Paper | None]:
    """Paper id -> the candidate paper, or None when it is not one."""
    return papers.get if isinstance(papers, Candidates) else {paper.id: paper for paper in papers}.get


def choose_items(
    session: Session,
    subscription: Subscription,
    papers: Sequence[Paper],
    ranker: Ranker | None = None,
    stats: dict[str, Any] | None = None,
) -> list[DigestItem]:
    """The ranked papers that pass min_score, at most max_papers of them, best first (with TL;DR
    lines when the subscription asks). `stats`, when given, gets the number of candidates and the
    best score among them, for the "why no email" record."""
    if stats is not None:
        stats.update(candidates=len(papers), best_score=None)
    if not papers:
        return []
    rank = ranker or default_ranker()
    interests = list(subscription.interests or []) or None
    ranked = rank(session, subscription.profile, papers, interests=interests)
    ranked = reading_order(subscription, ranked)
    if stats is not None and ranked:
        stats["best_score"] = max(item.score for item in ranked)
    find = candidate_lookup(papers)
    chosen: list[DigestItem] = []
    taken: set[int] = set()
    for item in ranked:
        # The ranker only sees candidates, but a paper it did not get must still never slip in.
        if (
            item.paper_id not in taken
            and find(item.paper_id) is not None
            and item.score >= subscription.min_score
        ):
            chosen.append(item)
            taken.add(item.paper_id)
        if len(chosen) >= subscription.max_papers:
            break
    if subscription.tldr:
        chosen = with_tldr(chosen, find)
    return chosen


def reading_order(subscription: Subscription, ranked: list[DigestItem]) -> list[DigestItem]:
    """The ranked papers in the order the subscription reads them: best of the week (weekly only),
    trending, or by score. Only matched papers are reordered: nothing off-topic gets in."""
    if subscription.best_of_week and subscription.cadence == "weekly":
        return best_of_week_order(ranked)
    if subscription.trending:
        return trending_order(ranked)
    return ranked


def with_tldr(items: list[DigestItem], find: Callable[[int], Paper | None]) -> list[DigestItem]:
    result = []
    for item in items:
        paper = find(item.paper_id)
        summary = tldr(paper.title, paper.abstract) if paper is not None else None
        result.append(dataclasses.replace(item, tldr=summary))
    return result


def digest_topic(subscription: Subscription, items: Sequence[DigestItem]) -> str:
    """What the digest is about, for the subject: the interests that matched, best first."""
    names: list[str] = []
    for item in items:
        if item.interest and item.interest not in names:
            names.append(item.interest)
    if not names:
        names = [str(n) for n in subscription.interests or []]
        names = names or [interest.name for interest in subscription.profile.interests]
    names = [" ".join(n.split()) for n in names if n and n.strip()]
    if not names:
        return "your interests"
    if len(names) == 1:
        return names[0]
    if len(names) <= _TOPIC_NAMES:
        return " and ".join(names)
    return f"{', '.join(names[:_TOPIC_NAMES])} and {len(names) - _TOPIC_NAMES} more"


def digest_links(
    subscription: Subscription, items: Sequence[DigestItem], settings: Settings, period: str | None = None
) -> DigestLinks:
    """Signed manage / unsubscribe / feedback links, and with a period the digest's own page (the web
    app serves them all)."""
    settings = keys_read_once(settings)
    unsubscribe = unsubscribe_url(subscription.subscriber_id, subscription.id, settings)
    owner = subscription.subscriber_id
    return DigestLinks(
        manage=manage_url(subscription.subscriber_id or 0, subscription.id, settings),
        unsubscribe=unsubscribe,
        unsubscribe_post=unsubscribe,  # RFC 8058: the same URL answers a one-click POST
        feedback={
            item.paper_id: (
                feedback_url(subscription.id, item.paper_id, True, settings),
                feedback_url(subscription.id, item.paper_id, False, settings),
            )
            for item in items
        },
        view=digest_url(owner, subscription.id, period, settings) if period else "",
        archive=archive_url(owner, subscription.id, settings),
        follow={
            item.paper_id: (
                follow_url(owner, subscription.id, item.paper_id, "authors", settings),
                follow_url(owner, subscription.id, item.paper_id, "seed", settings),
            )
            for item in items
        },
    )


def build_digest(
    subscription: Subscription,
    period: str,
    items: list[DigestItem],
    *,
    now: dt.datetime,
    settings: Settings,
    stats: dict[str, Any] | None = None,
) -> Digest:
    return Digest(
        subscription_id=subscription.id,
        period=period,
        topic=digest_topic(subscription, items),
        items=items,
        links=digest_links(subscription, items, settings, period),
        generated_at=now,
        candidates=(stats or {}).get("candidates"),
        best_score=(stats or {}).get("best_score"),
    )


def compose_digest(
    session: Session,
    subscription: Subscription,
    period: str,
    *,
    now: dt.datetime,
    settings: Settings,
    ranker: Ranker | None = None,
) -> Digest:
    """The digest `subscription` would get for `period` at `now` (reads only)."""
    papers = candidate_papers(session, subscription, now=now, settings=settings)
    stats: dict[str, Any] = {}
    items = choose_items(
        session, subscription, papers, ranker or (default_ranker(settings) if papers else None), stats
    )
    return build_digest(subscription, period, items, now=now, settings=settings, stats=stats)


# --- what a delivery recorded --------------------------------------------------------------------


def item_record(item: DigestItem) -> dict[str, Any]:
    """A digest item as JSON for delivery_papers.reason, enough to rebuild the same item."""
    return {
        "title": item.title,
        "url": item.url,
        "authors": list(item.authors),
        "author_count": item.author_count,
        "organization": item.organization,
        "published_on": item.published_on.isoformat() if item.published_on else None,
        "upvotes": item.upvotes,
        "code_url": item.code_url,
        "why": item.why,
        "snippet": [[seg.text, seg.hit] for seg in item.snippet],
        "matched_terms": list(item.matched_terms),
        "interest": item.interest,
        "tldr": item.tldr,
        "pdf_url": item.pdf_url,
    }


def item_json(item: DigestItem) -> dict[str, Any]:
    """A digest item as JSON with its paper and score (a composed digest sent to a worker)."""
    return {"paper_id": item.paper_id, "score": item.score, **item_record(item)}


def item_from_json(data: dict[str, Any]) -> DigestItem:
    published = data.get("published_on")
    return DigestItem(
        paper_id=int(data["paper_id"]),
        title=data["title"],
        url=data.get("url"),
        authors=list(data.get("authors") or []),
        author_count=data.get("author_count"),
        organization=data.get("organization"),
        published_on=dt.date.fromisoformat(published) if published else None,
        upvotes=data.get("upvotes"),
        code_url=data.get("code_url"),
        score=float(data["score"]),
        why=data.get("why") or "",
        snippet=[Segment(str(text), bool(hit)) for text, hit in data.get("snippet") or []],
        matched_terms=list(data.get("matched_terms") or []),
        interest=data.get("interest"),
    )


class RecordedItem(Protocol):
    """A delivery_papers or archived_papers row, or a row of retention.delivered_items."""

    paper_id: int
    score: float
    reason: dict[str, Any]


def item_from_record(row: RecordedItem, paper_title: str | None = None) -> DigestItem:
    """The digest item a record holds; `paper_title` (else the row's paper) stands in for a record
    without a title."""
    reason: dict[str, Any] = row.reason or {}
    published = reason.get("published_on")
    title = reason.get("title") or (paper_title if paper_title is not None else row.paper.title)  # type: ignore[attr-defined]
    return DigestItem(
        paper_id=row.paper_id,
        title=title,
        url=reason.get("url"),
        authors=list(reason.get("authors") or []),
        author_count=reason.get("author_count"),
        organization=reason.get("organization"),
        published_on=dt.date.fromisoformat(published) if published else None,
        upvotes=reason.get("upvotes"),
        code_url=reason.get("code_url"),
        score=row.score,
        why=reason.get("why") or "",
        snippet=[Segment(str(text), bool(hit)) for text, hit in reason.get("snippet") or []],
        matched_terms=list(reason.get("matched_terms") or []),
        interest=reason.get("interest"),
        tldr=reason.get("tldr"),
        pdf_url=reason.get("pdf_url"),
    )


def digest_from_record(
    session: Session, subscription: Subscription, delivery: Delivery, *, now: dt.datetime, settings: Settings
) -> Digest:
    """The digest a delivery recorded when it was claimed: a retry sends the same papers again."""
    rows = session.scalars(
        select(DeliveryPaper).where(DeliveryPaper.delivery_id == delivery.id).order_by(DeliveryPaper.rank)
    ).all()
    items = [item_from_record(row) for row in rows]
    return build_digest(subscription, delivery.period, items, now=now, settings=settings)
