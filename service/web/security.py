"""Web safety: security headers on every response, CSRF for forms, rate limits on subscribing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.models import RateLimitHit, utcnow
from service.secrets import secret_keys

# No inline script or style anywhere: the pages load /static/paperboy.js and .css from this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

CSRF_COOKIE = "paperboy_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (pure ASGI: streaming responses too)."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = {
                    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
                    b"x-frame-options": b"DENY",
                    # Pages carry signed tokens in their URLs: never send them to another site.
                    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null"
                    # on our own form POSTs, and the CSRF check needs the real origin.
                    b"referrer-policy": b"same-origin",
                    b"x-content-type-options": b"nosniff",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=(), interest-cohort=()",
                    # Personal pages must not sit in shared caches; static assets may.
                    b"cache-control": b"public, max-age=3600" if static else b"no-store",
                }
                if self.https:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- CSRF: a server-issued, signed cookie, its form token, and the origin of the request ----------
#
# Own code rather than starlette-csrf or asgi-csrf: the first checks a header only (our forms must
# work without JavaScript), the second buffers and parses every form body ahead of the route's own
# limits; neither checks Origin. The rules here are OWASP's "signed double-submit cookie".


def csrf_cookie_name(settings: Settings) -> str:
    # __Host-: the browser accepts it only from this host, over https, with Path=/ and no Domain,
    # so a sibling subdomain or a plain-http attacker cannot plant it.
    return ("__Host-" if settings.base_url.startswith("https://") else "") + CSRF_COOKIE


def _cookie_signer(settings: Settings) -> Signer:
    return Signer(list(reversed(secret_keys(settings))), salt="paperboy:csrf-cookie")


def _issued_secret(request: Request, settings: Settings) -> str | None:
    """The random secret in this browser's cookie, when the cookie is one this server issued."""
    cookie = request.cookies.get(csrf_cookie_name(settings))
    if not cookie:
        return None
    try:
        return _cookie_signer(settings).unsign(cookie).decode()
    except BadSignature:  # planted, altered, or signed under a key no longer accepted
        return None


def _csrf_signature(secret: str, settings: Settings) -> str:
    key = hashlib.sha256(b"paperboy:csrf:" + secret_keys(settings)[0].encode()).digest()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, settings: Settings) -> str:
    """The form token for this browser; a new cookie is made (set by `set_csrf_cookie`) when the
    browser has none this server issued."""
    secret = _issued_secret(request, settings) or getattr(request.state, "new_csrf_secret", None)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        request.state.new_csrf_secret = secret
    return _csrf_signature(secret, settings)


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    """Sends the cookie `csrf_token` created, if it created one."""
    secret = getattr(request.state, "new_csrf_secret", None)
    if secret:
        response.set_cookie(
            csrf_cookie_name(settings),
            _cookie_signer(settings).sign(secret).decode(),
            httponly=True,
            samesite="lax",
            secure=settings.base_url.startswith("https://"),
            path="/",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, settings: Settings) -> bool:
    """False when the browser says the request comes from another site (Origin, else Referer).

    A request with neither header is let through to the token check: browsers send Origin on
    every POST, and clients that send neither are not browsers a page could drive."""
    claimed = request.headers.get("origin")
    if claimed is None:
        referer = request.headers.get("referer")
        if not referer:
            return True
        claimed = _origin(referer)
    ours = {_origin(settings.base_url), _origin(str(request.base_url))}
    return claimed.lower() in ours


def csrf_valid(request: Request, submitted: str | None, settings: Settings) -> bool:
    """True when the request comes from our own page: same origin, and the submitted token is the
    signature of the secret in a cookie this server issued.

    A page on another site can make the browser send our cookie, but cannot read it, cannot plant
    one we would accept, and cannot compute the token without the secret key."""
    if not same_origin(request, settings):
        return False
    secret = _issued_secret(request, settings)
    if secret is None or not submitted:
        return False
    # Bytes: compare_digest refuses str holding non-ASCII characters (a TypeError, so a 500).
    return hmac.compare_digest(_csrf_signature(secret, settings).encode(), submitted.encode())


# --- rate limits ---------------------------------------------------------------------------------

RateVerdict = Literal["ok", "ip", "address"]


def _address_bucket(email: str) -> str:
    # A digest of the address, not the address: the table holds no personal data.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"subscribe:addr:{digest}"


def _count_and_hit(session: Session, bucket: str, limit: int, since: dt.datetime, now: dt.datetime) -> bool:
    """Counts one attempt in `bucket`; False (and nothing recorded) when the limit is reached."""
    used = session.scalar(
        select(func.count())
        .select_from(RateLimitHit)
        .where(RateLimitHit.bucket == bucket, RateLimitHit.at > since)
    )
    if (used or 0) >= limit:
        return False
    session.add(RateLimitHit(bucket=bucket, at=now))
    return True


def check_subscribe_rate(
    session: Session, *, ip: str, email: str, settings: Settings, now: dt.datetime | None = None
) -> RateVerdict:
    """Counts one subscribe attempt against the per-IP and per-address limits."""
    now = now or utcnow()
    since = now - dt.timedelta(seconds=settings.subscribe_limit_window_s)
    # Forget hits that can no longer count, so the table stays small.
    session.execute(
        delete(RateLimitHit).where(RateLimitHit.bucket.startswith("subscribe:"), RateLimitHit.at <= since)
    )
    if not _count_and_hit(session, f"subscribe:ip:{ip}", settings.subscribe_limit_per_ip, since, now):
        return "ip"
    if not _count_and_hit(session, _address_bucket(email), settings.subscribe_limit_per_address, since, now):
        return "address"
    # And a bound per day: the hourly limit alone lets a stranger send one inbox 72 emails a day.
    day_ago = now - dt.timedelta(days=1)
    session.execute(
        delete(RateLimitHit).where(RateLimitHit.bucket.startswith("confirm-day:"), RateLimitHit.at <= day_ago)
    )
    day_bucket = "confirm-day:" + _address_bucket(email).removeprefix("subscribe:")
    if not _count_and_hit(session, day_bucket, settings.confirm_emails_per_address_day, day_ago, now):
        return "address"
    return "ok"
