"""Admin API for readers' features: a subscription's past digests (with their web page), a search over
the papers it was sent (the reader's archive page), and followed authors with a name preview."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from service.archive import past_digests, search_sent
from service.authors import AuthorError, follow_for, followed_authors, preview, unfollow
from service.links import digest_url
from service.models import Subscription
from service.web.admin import DB, NOT_FOUND, Id, Limit, Offset, _get, require_admin
from service.web.admin_schemas import Error, Page

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={400: {"model": Error}, 401: {"model": Error}, 503: {"model": Error}},
)

SearchText = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class PastDigestOut(BaseModel):
    delivery_id: int
    period: str
    sent_at: dt.datetime | None
    paper_count: int
    titles: list[str]
    url: str  # the digest's web page, as the reader's "View in browser" link


class SentPaperOut(BaseModel):
    paper_id: int
    title: str
    url: str | None
    period: str
    sent_at: dt.datetime | None
    why: str


@router.get(
    "/subscriptions/{subscription_id}/digests", response_model=Page[PastDigestOut], responses=NOT_FOUND
)
def list_past_digests(
    request: Request, session: DB, subscription_id: Id, limit: Limit = 20, offset: Offset = 0
) -> dict[str, Any]:
    """The subscription's delivered digests, newest first."""
    sub = _get(session, Subscription, subscription_id, "subscription")
    settings = request.app.state.settings
    total, rows = past_digests(session, sub.id, limit=limit, offset=offset)
    items = [
        {**vars(row), "url": digest_url(sub.subscriber_id, sub.id, row.period, settings)} for row in rows
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/subscriptions/{subscription_id}/sent-papers", response_model=Page[SentPaperOut], responses=NOT_FOUND
)
def search_sent_papers(
    session: DB, subscription_id: Id, q: SearchText, limit: Limit = 20, offset: Offset = 0
) -> dict[str, Any]:
    """Papers the subscription was sent whose title or abstract holds every word of `q`."""
    sub = _get(session, Subscription, subscription_id, "subscription")
    total, rows = search_sent(session, sub.id, q, limit=limit, offset=offset)
    return {"items": [vars(row) for row in rows], "total": total, "limit": limit, "offset": offset}


# --- followed authors ----------------------------------------------------------------------------

AuthorName = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class AuthorsIn(BaseModel):
    names: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=50)


class AuthorsOut(BaseModel):
    subscription_id: int
    followed: list[str]
    added: list[str] = []
    removed: list[str] = []


class PreviewPaperOut(BaseModel):
    paper_id: int
    title: str
    written_as: str
    published_on: dt.date | None


class AuthorPreviewOut(BaseModel):
    name: str
    total: int
    spellings: list[tuple[str, int]]
    papers: list[PreviewPaperOut]


@router.get("/authors/preview", response_model=AuthorPreviewOut)
def preview_author(session: DB, name: AuthorName, limit: Limit = 20) -> dict[str, Any]:
    """The stored papers a name matches (newest first) and its spellings, to spot namesakes."""
    try:
        found = preview(session, name, limit=limit)
    except AuthorError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {
        "name": found.name,
        "total": found.total,
        "spellings": found.spellings,
        "papers": [
            {"paper_id": p.id, "title": p.title, "written_as": w, "published_on": p.published_on}
            for p, w in found.papers
        ],
    }


@router.get("/subscriptions/{subscription_id}/authors", response_model=AuthorsOut, responses=NOT_FOUND)
def list_followed(session: DB, subscription_id: Id) -> dict[str, Any]:
    sub = _get(session, Subscription, subscription_id, "subscription")
    return {"subscription_id": sub.id, "followed": followed_authors(sub.profile)}


@router.post("/subscriptions/{subscription_id}/authors", response_model=AuthorsOut, responses=NOT_FOUND)
def follow_authors(session: DB, subscription_id: Id, body: AuthorsIn) -> dict[str, Any]:
    """Follow names (idempotent: names already followed in any spelling are skipped)."""
    sub = _get(session, Subscription, subscription_id, "subscription")
    try:
        added = follow_for(session, sub, body.names)
    except AuthorError as exc:
        session.rollback()
        raise HTTPException(400, str(exc)) from exc
    session.commit()
    return {"subscription_id": sub.id, "followed": followed_authors(sub.profile), "added": added}


@router.delete("/subscriptions/{subscription_id}/authors", response_model=AuthorsOut, responses=NOT_FOUND)
def unfollow_author(session: DB, subscription_id: Id, name: AuthorName) -> dict[str, Any]:
    sub = _get(session, Subscription, subscription_id, "subscription")
    try:
        removed = unfollow(session, sub.profile, name)
    except AuthorError as exc:
        session.rollback()
        raise HTTPException(400, str(exc)) from exc
    session.commit()
    return {"subscription_id": sub.id, "followed": followed_authors(sub.profile), "removed": removed}


# --- webhook subscriptions -----------------------------------------------------------------------


class WebhookIn(BaseModel):
    platform: Literal["discord", "teams", "mattermost"]
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^:\x00-\x1f\x7f]+$")
    url: str = Field(min_length=8, max_length=2000, description="the incoming-webhook URL (stored encrypted)")
    interests: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20
    )
    query: str | None = Field(None, max_length=2000)
    cadence: Literal["daily", "weekdays", "weekly"] = "daily"
    weekday: int | None = Field(None, ge=0, le=6)
    send_time: str = Field("08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    timezone: str = Field("UTC", max_length=64)
    max_papers: int = Field(10, ge=1, le=100)


class WebhookOut(BaseModel):
    subscription_id: int
    address: str  # "<platform>:<name>"; the URL is never shown again


@router.post("/webhooks", response_model=WebhookOut, status_code=201)
def create_webhook(request: Request, session: DB, body: WebhookIn) -> dict[str, Any]:
    """A digest posted to a Discord, Teams or Mattermost incoming webhook."""
    from service.channels.webhook import subscribe_webhook
    from service.subscription import SubscriptionError

    try:
        sub = subscribe_webhook(
            session,
            body.platform,
            body.name,
            body.url,
            body.interests,
            request.app.state.settings,
            query=body.query,
            cadence=body.cadence,
            weekday=body.weekday,
            send_time=body.send_time,
            timezone=body.timezone,
            max_papers=body.max_papers,
        )
    except SubscriptionError as exc:
        session.rollback()
        raise HTTPException(400, str(exc)) from exc
    session.commit()
    return {"subscription_id": sub.id, "address": sub.address}


# --- why no email --------------------------------------------------------------------------------


class NoteOut(BaseModel):
    at: dt.datetime
    pass_at: dt.datetime
    period: str | None
    outcome: str
    papers: int
    best_score: float | None
    cutoff: float | None
    detail: str | None
    text: str  # the note in plain words


@router.get("/subscriptions/{subscription_id}/why", response_model=list[NoteOut], responses=NOT_FOUND)
def why_notes(
    session: DB, subscription_id: Id, days: Annotated[int, Query(ge=1, le=30)] = 7
) -> list[dict[str, Any]]:
    """What each dispatch pass of the last `days` days did with the subscription, and why."""
    from service.models import utcnow
    from service.why import in_words, notes_for

    sub = _get(session, Subscription, subscription_id, "subscription")
    notes = notes_for(session, sub.id, since=utcnow() - dt.timedelta(days=days))
    return [
        {
            "at": n.at,
            "pass_at": n.pass_at,
            "period": n.period,
            "outcome": n.outcome,
            "papers": n.papers,
            "best_score": n.best_score,
            "cutoff": n.cutoff,
            "detail": n.detail,
            "text": in_words(n),
        }
        for n in notes
    ]


# --- feeds ---------------------------------------------------------------------------------------


class FeedLinksOut(BaseModel):
    subscription_id: int
    atom: str
    rss: str
    gone: bool  # the subscription ended: both answer 410


@router.get("/subscriptions/{subscription_id}/feed", response_model=FeedLinksOut, responses=NOT_FOUND)
def feed_links(request: Request, session: DB, subscription_id: Id, reset: bool = False) -> dict[str, Any]:
    """The subscription's private feed links; `reset=true` revokes every earlier link first."""
    from service.links import feed_url
    from service.models import utcnow

    sub = _get(session, Subscription, subscription_id, "subscription")
    if reset:
        sub.feed_reset_at = utcnow()
        session.commit()
    settings = request.app.state.settings
    return {
        "subscription_id": sub.id,
        "atom": feed_url(sub.subscriber_id, sub.id, "atom", settings),
        "rss": feed_url(sub.subscriber_id, sub.id, "rss", settings),
        "gone": sub.status == "unsubscribed",
    }
