"""Every digest has a home: its own page (the "View in browser" link) and the subscription's archive
of past digests, with a search over the papers it was sent."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from service.archive import PAGE_SIZE, archived_delivery, digest_items, past_digests, search_sent
from service.digest.compose import build_digest
from service.digest.render import digest_context
from service.links import ARCHIVE_PATH, DIGEST_PATH, archive_url, digest_url, follow_url, manage_url
from service.models import Subscription, utcnow
from service.web.access import LinkRejected, claims_of, own_subscription, rejected
from service.web.views import DB, render, settings_of

router = APIRouter(include_in_schema=False)

PageNumber = Annotated[int, Query(ge=1, le=100_000)]
SearchText = Annotated[str, Query(max_length=200)]


def _path(url: str) -> str:
    return urlsplit(url).path


def _common(request: Request, subscription: Subscription) -> dict[str, Any]:
    settings = settings_of(request)
    owner = subscription.subscriber_id
    return {
        "address": subscription.address,
        "archive_url": _path(archive_url(owner, subscription.id, settings)),
        "manage_url": _path(manage_url(owner, subscription.id, settings)) if owner else "",
    }


@router.get(DIGEST_PATH, response_class=HTMLResponse)
def digest_page(request: Request, session: DB, token: str) -> Response:
    """The digest as it was delivered: the same papers, reasons and feedback buttons."""
    try:
        subscription = own_subscription(request, session, "digest", token)
        period = claims_of(request, "digest", token).extra.get("period")
        delivery = archived_delivery(session, subscription.id, period) if isinstance(period, str) else None
        if delivery is None:
            raise LinkRejected(404, "This digest was not delivered, so it has no page.")
    except LinkRejected as exc:
        return rejected(request, exc, "digest")
    digest = build_digest(
        subscription,
        delivery.period,
        digest_items(session, delivery),
        now=delivery.sent_at or utcnow(),
        settings=settings_of(request),
    )
    context = {**digest_context(digest), **_common(request, subscription)}
    return render(request, "digest.html.j2", context)


@router.get(ARCHIVE_PATH, response_class=HTMLResponse)
def archive_page(
    request: Request, session: DB, token: str, page: PageNumber = 1, q: SearchText = ""
) -> Response:
    """Past digests newest first, PAGE_SIZE a page; with `q`, the sent papers that match it."""
    try:
        subscription = own_subscription(request, session, "archive", token)
    except LinkRejected as exc:
        return rejected(request, exc, "archive")
    settings = settings_of(request)
    offset = (page - 1) * PAGE_SIZE
    query = " ".join(q.split())
    owner = subscription.subscriber_id
    papers: list[dict[str, Any]] = []
    digests: list[dict[str, Any]] = []
    if query:
        total, found = search_sent(session, subscription.id, query, limit=PAGE_SIZE, offset=offset)
        papers = [
            {
                "paper": p,
                "digest_url": _path(digest_url(owner, subscription.id, p.period, settings)),
                "follow": [
                    _path(follow_url(owner, subscription.id, p.paper_id, action, settings))
                    for action in ("authors", "seed")
                ],
            }
            for p in found
        ]
    else:
        total, listed = past_digests(session, subscription.id, limit=PAGE_SIZE, offset=offset)
        digests = [
            {"digest": d, "url": _path(digest_url(owner, subscription.id, d.period, settings))}
            for d in listed
        ]
    here = ARCHIVE_PATH.format(token=token)

    def page_url(n: int) -> str:
        return here + "?" + urlencode({"page": n, **({"q": query} if query else {})})

    context = {
        **_common(request, subscription),
        "action": here,
        "query": query,
        "total": total,
        "papers": papers,
        "digests": digests,
        "page": page,
        "newer_url": page_url(page - 1) if page > 1 else "",
        "older_url": page_url(page + 1) if offset + PAGE_SIZE < total else "",
    }
    return render(request, "archive.html.j2", context)
