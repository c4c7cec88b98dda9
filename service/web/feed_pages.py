"""The private feed of a subscription: /feed/{token}.atom and .rss, with conditional GET.

A strong ETag and Last-Modified let readers poll cheaply (304 Not Modified); `Cache-Control: private`
keeps shared caches out. An unsubscribed subscription, or a link signed before the reader reset it,
answers 410 Gone, which tells feed readers to stop asking."""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from service.channels.feed import FORMATS, build_feed, feed_version
from service.links import MANAGE_PATH, archive_url, feed_url
from service.models import utcnow
from service.web.access import LinkRejected, claims_of, own_subscription
from service.web.following import managed_form
from service.web.views import DB, Form, settings_of

router = APIRouter(include_in_schema=False)

MEDIA = {"atom": "application/atom+xml; charset=utf-8", "rss": "application/rss+xml; charset=utf-8"}
CACHE = "private, max-age=900"


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


@router.get("/feed/{token}.{fmt}")
def feed(request: Request, session: DB, token: str, fmt: str) -> Response:
    if fmt not in FORMATS:
        return _plain(404, "Feeds are .atom or .rss.")
    try:
        subscription = own_subscription(request, session, "feed", token)
        issued = claims_of(request, "feed", token).issued_at
    except LinkRejected as exc:
        return _plain(exc.status_code, exc.message)
    reset = subscription.feed_reset_at
    if subscription.status == "unsubscribed" or (
        reset is not None and issued.timestamp() < int(reset.timestamp())
    ):
        return _plain(410, "This feed is gone: the subscription ended or its feed link was reset.")
    version = feed_version(session, subscription, fmt)
    headers = {"ETag": version.etag, "Cache-Control": CACHE}
    if version.last_modified is not None:
        headers["Last-Modified"] = format_datetime(version.last_modified, usegmt=True)
    if _not_modified(request, version.etag, version.last_modified):
        return Response(status_code=304, headers=headers)
    settings = settings_of(request)
    owner = subscription.subscriber_id
    body = build_feed(
        session,
        subscription,
        fmt,
        self_url=feed_url(owner, subscription.id, fmt, settings),
        home_url=settings.base_url.rstrip("/") + urlsplit(archive_url(owner, subscription.id, settings)).path,
    )
    return Response(body, media_type=MEDIA[fmt], headers=headers)


def _not_modified(request: Request, etag: str, last_modified: object) -> bool:
    given = request.headers.get("if-none-match")
    if given is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
        return etag in {tag.strip() for tag in given.split(",")} or given.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since and last_modified is not None:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            return False
    return False


@router.post(MANAGE_PATH + "/feed-reset")
def reset_feed(request: Request, session: DB, form: Form, token: str) -> Response:
    """A new feed link; every older one answers 410 Gone from now on."""
    subscription = managed_form(request, session, form, token)
    if isinstance(subscription, Response):
        return subscription
    subscription.feed_reset_at = utcnow()
    session.commit()
    return RedirectResponse(MANAGE_PATH.format(token=token) + "?saved=1", status_code=303)
