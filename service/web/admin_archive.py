"""Admin API: a subscription's past digests (with their web page) and a search over the papers it was
sent, the same data as the reader's archive page."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from service.archive import past_digests, search_sent
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
