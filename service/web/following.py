"""Follow people: the one-click "follow these authors" / "more like this" links of digests and the
archive, the authors page of a subscription (followed names, a preview of what a name matches), and
the manage page's reading options (TL;DR, trending, best of the week)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.authors import (
    AuthorError,
    add_seed,
    follow_for,
    followed_authors,
    paper_authors_to_follow,
    preview,
    unfollow,
)
from service.links import FOLLOW_PATH, MANAGE_PATH, archive_url, manage_url
from service.models import Paper, Subscription
from service.reading import OPTIONS, ReadingError, set_reading_options
from service.web.access import LinkRejected, claims_of, own_subscription, rejected
from service.web.security import CSRF_FIELD, csrf_valid
from service.web.views import DB, Form, error_page, render, settings_of

router = APIRouter(include_in_schema=False)

AUTHORS_PATH = MANAGE_PATH + "/authors"
NameText = Annotated[str, Query(max_length=200)]


def managed_form(request: Request, session: DB, form: Form, token: str) -> Subscription | Response:
    """The subscription a manage link names, for a form posted with a valid CSRF token; else the
    page that says why not (a form of the manage page's own: authors, reading options, feed reset)."""
    try:
        subscription = own_subscription(request, session, "manage", token)
    except LinkRejected as exc:
        return rejected(request, exc, "manage")
    if not csrf_valid(request, form.get(CSRF_FIELD), settings_of(request)):  # type: ignore[arg-type]
        return error_page(request, 403, "This form has expired. Reload the page and try again.")
    return subscription


@router.get(FOLLOW_PATH, response_class=HTMLResponse)
def follow_link(request: Request, session: DB, token: str) -> Response:
    """One click from a digest: follow the paper's authors, or add the paper as a seed. Idempotent:
    a second click changes nothing and says so."""
    try:
        subscription = own_subscription(request, session, "follow", token)
        claims = claims_of(request, "follow", token)
        paper_id, action = claims.extra.get("paper"), claims.extra.get("action")
        paper = session.get(Paper, paper_id) if isinstance(paper_id, int) else None
        if paper is None or action not in {"authors", "seed"}:
            raise LinkRejected(404, "This follow link is not valid.")
    except LinkRejected as exc:
        return rejected(request, exc, "follow")
    context: dict[str, Any] = {"title": " ".join(paper.title.split()), "action": action}
    if action == "authors":
        names = paper_authors_to_follow(paper)
        if not names:
            return error_page(request, 400, "This paper lists no author names to follow.")
        added = follow_for(session, subscription, names)
        context |= {"names": names, "added": added}
    else:
        context["interest"] = add_seed(session, subscription, paper.id)
    session.commit()
    settings = settings_of(request)
    owner = subscription.subscriber_id
    manage = urlsplit(manage_url(owner, subscription.id, settings)).path if owner else ""
    context["authors_url"] = manage + "/authors" if manage else ""
    context["archive_url"] = urlsplit(archive_url(owner, subscription.id, settings)).path
    return render(request, "followed.html.j2", context)


def _authors_page(
    request: Request,
    session: DB,
    token: str,
    subscription: Subscription,
    *,
    name: str = "",
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Response:
    found = None
    if name and not error:
        try:
            found = preview(session, name)
        except AuthorError as exc:
            error, status_code = str(exc), 400
    path = AUTHORS_PATH.format(token=token)
    context = {
        "address": subscription.address,
        "followed": followed_authors(subscription.profile),
        "name": name,
        "preview": found,
        "error": error,
        "notice": notice,
        "action": path,
        "manage_url": MANAGE_PATH.format(token=token),
        "archive_url": urlsplit(
            archive_url(subscription.subscriber_id, subscription.id, settings_of(request))
        ).path,
    }
    return render(request, "authors.html.j2", context, status_code)


@router.get(AUTHORS_PATH, response_class=HTMLResponse)
def authors_page(request: Request, session: DB, token: str, name: NameText = "") -> Response:
    """The followed authors, and with `name` a preview of the stored papers that name matches."""
    try:
        subscription = own_subscription(request, session, "manage", token)
    except LinkRejected as exc:
        return rejected(request, exc, "manage")
    notice = "Saved." if request.query_params.get("saved") else ""
    return _authors_page(request, session, token, subscription, name=" ".join(name.split()), notice=notice)


@router.post(AUTHORS_PATH, response_class=HTMLResponse)
def change_authors(request: Request, session: DB, form: Form, token: str) -> Response:
    subscription = managed_form(request, session, form, token)
    if isinstance(subscription, Response):
        return subscription
    name = " ".join(str(form.get("name") or "").split())
    try:
        if form.get("unfollow"):
            unfollow(session, subscription.profile, str(form.get("unfollow")))
        else:
            follow_for(session, subscription, [name])
    except AuthorError as exc:
        session.rollback()
        return _authors_page(
            request, session, token, subscription, name=name, error=str(exc), status_code=400
        )
    session.commit()
    return RedirectResponse(AUTHORS_PATH.format(token=token) + "?saved=1", status_code=303)


# --- how the digest reads (TL;DR, trending, best of the week) ---------------------------------------

READING_PATH = MANAGE_PATH + "/reading"


@router.post(READING_PATH, response_class=HTMLResponse)
def change_reading(request: Request, session: DB, form: Form, token: str) -> Response:
    """The manage page's "How your digest reads" form: unchecked boxes turn an option off."""
    subscription = managed_form(request, session, form, token)
    if isinstance(subscription, Response):
        return subscription
    options = {key: bool(form.get(key)) for key in OPTIONS}
    try:
        set_reading_options(session, subscription, **options)
    except ReadingError as exc:
        session.rollback()
        return error_page(request, 400, str(exc))
    session.commit()
    return RedirectResponse(MANAGE_PATH.format(token=token) + "?saved=1", status_code=303)
