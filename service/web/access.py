"""Signed links to rows: a token opens only what it names, for the subscriber it names, for its purpose."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import SignatureExpired
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Subscription
from service.tokens import TokenClaims, TokenError, read_token
from service.web.views import error_page, settings_of


class LinkRejected(Exception):
    """A link that opens nothing: 404 when forged or misdirected, 410 when expired."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def claims_of(request: Request, purpose: str, token: str) -> TokenClaims:
    """The claims of a valid token; LinkRejected (404 forged, 410 expired) otherwise."""
    settings = settings_of(request)
    try:
        # A confirm link lives days, not the weeks a digest's links do.
        max_age = settings.confirm_link_max_age_hours * 3600 if purpose == "confirm" else None
        return read_token(purpose, token, settings=settings, max_age_s=max_age)
    except TokenError as exc:
        if isinstance(exc.__cause__, SignatureExpired):
            raise LinkRejected(410, f"This {purpose} link has expired.") from exc
        raise LinkRejected(404, f"This {purpose} link is not valid.") from exc


def issued_before(request: Request, purpose: str, token: str, created_at: dt.datetime) -> bool:
    """True when the token predates the row it names: a row id reused after a deletion (SQLite can
    reuse the highest id) must not let an old link reach the new owner's data."""
    issued = claims_of(request, purpose, token).issued_at
    return issued.timestamp() < int(created_at.timestamp())


def own_subscription(request: Request, session: Session, purpose: str, token: str) -> Subscription:
    """The subscription a manage or unsubscribe token names, only when it belongs to the token's
    subscriber: a token for one subscriber never reaches another's data."""
    claims = claims_of(request, purpose, token)
    subscription: Subscription | None = None
    if claims.subscription_id is not None:
        subscription = session.get(Subscription, claims.subscription_id)
    elif claims.subscriber_id is not None:  # a manage link for the subscriber: their first email one
        subscription = session.scalar(
            select(Subscription)
            .where(Subscription.subscriber_id == claims.subscriber_id, Subscription.channel == "email")
            .order_by(Subscription.id)
            .limit(1)
        )
    if (
        subscription is None
        or (claims.subscriber_id or None) != subscription.subscriber_id
        or subscription.profile.subscriber_id != subscription.subscriber_id
        or issued_before(request, purpose, token, subscription.created_at)
    ):
        raise LinkRejected(404, f"This {purpose} link is not valid.")
    return subscription


def rejected(request: Request, exc: LinkRejected, purpose: str) -> Response:
    return error_page(request, exc.status_code, exc.message, show_subscribe=purpose in {"manage", "confirm"})
