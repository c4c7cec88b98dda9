"""The pages people see: subscribe, confirm, preferences with a live preview, unsubscribe, feedback."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import FormData

from service import why
from service.delivery.schedule import Schedule
from service.links import (
    CONFIRM_PATH,
    FEEDBACK_PATH,
    MANAGE_PATH,
    UNSUBSCRIBE_PATH,
    archive_url,
    feed_url,
    manage_url,
    unsubscribe_url,
)
from service.models import Paper, Profile, Subscriber, Subscription, utcnow
from service.profile import record_feedback
from service.subscription import SubscriptionError
from service.subscription import unsubscribe as end_subscription
from service.web import forms, signup
from service.web.access import LinkRejected, claims_of, issued_before, own_subscription, rejected
from service.web.preferences import apply_preferences, preview_digest, shown_interests
from service.web.security import CSRF_FIELD, check_subscribe_rate, csrf_valid
from service.web.views import DB, Form, error_page, render, settings_of

router = APIRouter(include_in_schema=False)


# --- subscribe and confirm -----------------------------------------------------------------------


def _subscribe_page(request: Request, values: Any, errors: forms.Errors, status_code: int = 200) -> Response:
    context = {
        "values": values,
        "errors": errors,
        "timezones": forms.TIMEZONES,
        "weekdays": forms.WEEKDAYS,
    }
    return render(request, "subscribe.html.j2", context, status_code)


@router.get("/", response_class=HTMLResponse)
def subscribe_form(request: Request) -> Response:
    return _subscribe_page(request, forms.SubscribeInput(), {})


@router.get("/subscribe")
def subscribe_get() -> Response:
    return RedirectResponse("/", status_code=303)


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(request: Request, session: DB, form: Form, background: BackgroundTasks) -> Response:
    """Double opt-in: the answer is the same whether or not the address is already known."""
    settings = settings_of(request)
    if not csrf_valid(request, form.get(CSRF_FIELD), settings):  # type: ignore[arg-type]
        return error_page(request, 403, "This form has expired. Reload the page and submit it again.")
    data, errors = forms.parse_subscribe(form)
    if not errors:
        # Every rule about the input runs before the address is looked up (and before the rate
        # limit counts it): the answer must not depend on whether the address is known.
        try:
            signup.check_input(data)
        except SubscriptionError as exc:
            errors = {"keywords": str(exc)}
    if errors:
        return _subscribe_page(request, data, errors, 400)
    ip = request.client.host if request.client else "unknown"
    verdict = check_subscribe_rate(session, ip=ip, email=data.email, settings=settings)
    session.commit()
    if verdict == "ip":
        retry = str(settings.subscribe_limit_window_s)
        return error_page(
            request,
            429,
            "Too many sign-ups from your network. Please try again later.",
            headers={"Retry-After": retry},
        )
    if verdict == "ok":
        subscriber_id = _request_subscription(session, data)
        background.add_task(signup.send_confirmation, request.app.state.sessions, subscriber_id, settings)
    # verdict "address": that inbox already got its emails for now; the page says the same as ever.
    return render(request, "sent.html.j2", {"email": data.email})


def _request_subscription(session: Session, data: forms.SubscribeInput) -> int:
    """Records the sign-up; a second attempt sees the row a concurrent sign-up of the same address made."""
    for attempt in (1, 2):
        try:
            subscriber_id = signup.request_subscription(session, data, now=utcnow())
            session.commit()
            return subscriber_id
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _confirm_target(request: Request, session: Session, token: str) -> Subscriber:
    """The subscriber a confirm link names, while the link is unused; LinkRejected otherwise."""
    claims = claims_of(request, "confirm", token)
    subscriber = session.get(Subscriber, claims.subscriber_id or 0)
    if subscriber is None or issued_before(request, "confirm", token, subscriber.created_at):
        raise LinkRejected(404, "This confirm link is not valid.")
    used = subscriber.confirmed_at
    if used is not None and claims.issued_at.timestamp() <= int(used.timestamp()):
        raise LinkRejected(
            410, "This confirm link was already used. Your preferences link is at the bottom of every digest."
        )
    return subscriber


@router.get(CONFIRM_PATH, response_class=HTMLResponse)
def confirm_page(request: Request, session: DB, token: str) -> Response:
    """A page with one button: opening the link (as mail scanners do) changes nothing."""
    try:
        subscriber = _confirm_target(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "confirm")
    context = {"address": subscriber.email, "action": CONFIRM_PATH.format(token=token)}
    return render(request, "confirm.html.j2", context)


@router.post(CONFIRM_PATH)
def confirm(request: Request, session: DB, form: Form, token: str) -> Response:
    try:
        subscriber = _confirm_target(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "confirm")
    if not csrf_valid(request, form.get(CSRF_FIELD), settings_of(request)):  # type: ignore[arg-type]
        return error_page(request, 403, "This page has expired. Open the link from your email again.")
    now = utcnow()
    signup.confirm(session, subscriber, now=now)
    subscriber.confirmed_at = now  # this link, and every one signed before it, is now used
    session.commit()
    first = session.scalar(
        select(Subscription.id)
        .where(Subscription.subscriber_id == subscriber.id, Subscription.channel == "email")
        .order_by(Subscription.id)
        .limit(1)
    )
    target = manage_url(subscriber.id, first, settings_of(request))
    return RedirectResponse(urlsplit(target).path + "?confirmed=1", status_code=303)


# --- preferences ---------------------------------------------------------------------------------


def _load_for_manage(request: Request, session: Session, token: str) -> Subscription:
    subscription = own_subscription(request, session, "manage", token)
    # Interests and feedback come with the profile in one round trip each.
    session.scalar(
        select(Profile)
        .where(Profile.id == subscription.profile_id)
        .options(selectinload(Profile.interests), selectinload(Profile.feedback))
    )
    return subscription


def _manage_page(
    request: Request,
    session: Session,
    token: str,
    subscription: Subscription,
    *,
    rows: list[dict[str, Any]],
    values: dict[str, Any],
    errors: forms.Errors,
    notices: list[dict[str, str]],
    status_code: int = 200,
) -> Response:
    state = "paused" if subscription.paused and subscription.status == "active" else subscription.status
    labels = {"active": "active", "paused": "paused", "pending": "waiting for confirmation"}
    settings = settings_of(request)
    context = {
        "address": subscription.address,
        "state": state,
        "state_label": labels.get(state, state),
        "status": subscription.status,
        "schedule": Schedule.of(subscription).describe(),
        "notices": notices,
        "errors": errors,
        "interests": rows,
        "values": values,
        "timezones": forms.TIMEZONES,
        "weekdays": forms.WEEKDAYS,
        "action": MANAGE_PATH.format(token=token),
        "preview_url": MANAGE_PATH.format(token=token) + "/preview",
        "unsubscribe_url": urlsplit(
            unsubscribe_url(subscription.subscriber_id, subscription.id, settings)
        ).path,
        "preview": preview_digest(session, subscription, utcnow()),
        "archive_url": urlsplit(archive_url(subscription.subscriber_id, subscription.id, settings)).path,
        "why_days": why.recent_lines(session, subscription, utcnow()),
        "feed": {
            fmt: feed_url(subscription.subscriber_id, subscription.id, fmt, settings)
            for fmt in ("atom", "rss")
        },
        "reading": {
            "tldr": subscription.tldr,
            "trending": subscription.trending,
            "best_of_week": subscription.best_of_week,
            "weekly": subscription.cadence == "weekly",
        },
    }
    return render(request, "manage.html.j2", context, status_code)


def _parse_manage(session: Session, form: FormData, subscription: Subscription) -> tuple[Any, forms.Errors]:
    shown = shown_interests(subscription)
    hidden = {i.name for i in subscription.profile.interests if i not in shown}
    return forms.parse_manage(session, form, shown, hidden)


@router.get(MANAGE_PATH, response_class=HTMLResponse)
def manage(request: Request, session: DB, token: str) -> Response:
    try:
        subscription = _load_for_manage(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "manage")
    notices = []
    if request.query_params.get("confirmed"):
        notices.append({"kind": "ok", "text": "Your subscription is confirmed. Welcome!"})
    if request.query_params.get("saved"):
        notices.append({"kind": "ok", "text": "Saved. Your next digest will use these settings."})
    return _manage_page(
        request,
        session,
        token,
        subscription,
        rows=forms.interest_rows(session, shown_interests(subscription)),
        values=forms.schedule_values(subscription),
        errors={},
        notices=notices,
    )


@router.post(MANAGE_PATH, response_class=HTMLResponse)
def save_preferences(
    request: Request, session: DB, form: Form, token: str, background: BackgroundTasks
) -> Response:
    try:
        subscription = _load_for_manage(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "manage")
    if not csrf_valid(request, form.get(CSRF_FIELD), settings_of(request)):  # type: ignore[arg-type]
        return error_page(request, 403, "This form has expired. Reload the page and save again.")
    data, errors = _parse_manage(session, form, subscription)
    if errors:
        values = {**vars(data), "weekday": data.weekday}
        return _manage_page(
            request,
            session,
            token,
            subscription,
            rows=forms.interest_rows(session, data.interests),
            values=values,
            errors=errors,
            notices=[],
            status_code=400,
        )
    coming_back = data.resubscribe and subscription.status == "unsubscribed"
    apply_preferences(session, subscription, data, utcnow())
    session.commit()
    if coming_back:  # pending until the owner of the inbox confirms again
        background.add_task(
            signup.send_confirmation,
            request.app.state.sessions,
            subscription.subscriber_id or 0,
            settings_of(request),
        )
    return RedirectResponse(MANAGE_PATH.format(token=token) + "?saved=1", status_code=303)


@router.post(MANAGE_PATH + "/preview", response_class=HTMLResponse)
def preview(request: Request, session: DB, form: Form, token: str) -> Response:
    """The preview for the form as typed: applied in a transaction that is rolled back, never saved."""
    try:
        subscription = _load_for_manage(request, session, token)
    except LinkRejected as exc:
        return Response(exc.message, status_code=exc.status_code, media_type="text/plain")
    if not csrf_valid(request, form.get(CSRF_FIELD), settings_of(request)):  # type: ignore[arg-type]
        return Response("This page has expired; reload it.", status_code=403, media_type="text/plain")
    data, errors = _parse_manage(session, form, subscription)
    try:
        if errors:
            result: Any = {
                "error": next(iter(errors.values())),
                "available": True,
                "items": [],
                "paper_count": 0,
            }
        else:
            apply_preferences(session, subscription, data, utcnow())
            result = preview_digest(session, subscription, utcnow())
    finally:
        session.rollback()
    return render(request, "_preview.html.j2", {"preview": result}, 200 if not errors else 400)


# --- unsubscribe and feedback --------------------------------------------------------------------


@router.get(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
def unsubscribe_page(request: Request, session: DB, token: str) -> Response:
    """One button; the POST it sends is the same one a mail client sends for one-click unsubscribe."""
    try:
        subscription = own_subscription(request, session, "unsubscribe", token)
    except LinkRejected as exc:
        return rejected(request, exc, "unsubscribe")
    return _unsubscribe_page(request, token, subscription, done=subscription.status == "unsubscribed")


def _unsubscribe_page(request: Request, token: str, subscription: Subscription, *, done: bool) -> Response:
    # No preferences link here: the unsubscribe URL travels in a header mail providers see, and must
    # not open a page that can change or restart the subscription.
    context = {"done": done, "address": subscription.address, "action": UNSUBSCRIBE_PATH.format(token=token)}
    return render(request, "unsubscribe.html.j2", context)


@router.post(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
def unsubscribe(request: Request, session: DB, token: str) -> Response:
    """RFC 8058 one-click: the signed token is the whole authority; no login, no CSRF, no second step."""
    try:
        subscription = own_subscription(request, session, "unsubscribe", token)
    except LinkRejected as exc:
        return rejected(request, exc, "unsubscribe")
    end_subscription(session, subscription.id, subscriber_id=subscription.subscriber_id)
    session.commit()
    return _unsubscribe_page(request, token, subscription, done=True)


def _feedback_target(request: Request, session: Session, token: str) -> tuple[Subscription, Paper, bool]:
    claims = claims_of(request, "feedback", token)
    subscription = session.get(Subscription, claims.subscription_id or 0)
    paper_id, relevant = claims.extra.get("paper"), claims.extra.get("relevant")
    paper = session.get(Paper, paper_id) if isinstance(paper_id, int) else None
    if (
        subscription is None
        or paper is None
        or not isinstance(relevant, bool)
        or issued_before(request, "feedback", token, subscription.created_at)
    ):
        raise LinkRejected(404, "This feedback link is not valid.")
    return subscription, paper, relevant


def _feedback_page(
    request: Request, session: Session, token: str, subscription: Subscription, paper: Paper, relevant: bool
) -> Response:
    # The latest verdict wins (one per profile and paper), so opening a link twice, or a scanner
    # opening both, leaves one verdict that the page shows and lets the reader change.
    record_feedback(session, subscription.profile, paper.id, relevant, channel="email")
    session.commit()
    manage = manage_url(subscription.subscriber_id or 0, subscription.id, settings_of(request))
    context = {
        "title": paper.title,
        "relevant": relevant,
        "action": FEEDBACK_PATH.format(token=token),
        "manage_url": urlsplit(manage).path if subscription.subscriber_id else "/",
    }
    return render(request, "feedback.html.j2", context)


@router.get(FEEDBACK_PATH, response_class=HTMLResponse)
def feedback(request: Request, session: DB, token: str) -> Response:
    try:
        subscription, paper, relevant = _feedback_target(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "feedback")
    return _feedback_page(request, session, token, subscription, paper, relevant)


@router.post(FEEDBACK_PATH, response_class=HTMLResponse)
def change_feedback(request: Request, session: DB, form: Form, token: str) -> Response:
    """The page's button: the reader's own verdict, whichever link opened the page."""
    try:
        subscription, paper, _ = _feedback_target(request, session, token)
    except LinkRejected as exc:
        return rejected(request, exc, "feedback")
    if not csrf_valid(request, form.get(CSRF_FIELD), settings_of(request)):  # type: ignore[arg-type]
        return error_page(request, 403, "This page has expired. Reload it and try again.")
    return _feedback_page(request, session, token, subscription, paper, form.get("relevant") == "1")
