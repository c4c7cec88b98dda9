"""Signed, expiring, purpose-scoped tokens for links in digests and pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from service.config import Settings, get_settings
from service.secrets import secret_keys

PURPOSES = frozenset({"confirm", "manage", "unsubscribe", "feedback", "slack-action"})
# Reader links (service.links): a digest's web page, a subscription's archive, one-click follow actions.
PURPOSES = PURPOSES | {"digest", "archive", "follow", "feed"}


class TokenError(Exception):
    """A token that is forged, expired, or meant for another purpose."""


@dataclass(frozen=True)
class TokenClaims:
    subscriber_id: int | None
    subscription_id: int | None
    extra: dict[str, Any]
    issued_at: dt.datetime  # when it was signed: a token older than the row it names is refused


def _serializer(purpose: str, settings: Settings) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    # The purpose is the salt: a token signed for one purpose never verifies for another. itsdangerous
    # signs with the last key of the list and verifies with any, so old keys still open old links.
    return _signer(tuple(reversed(secret_keys(settings))), purpose)


@lru_cache(maxsize=64)
def _signer(keys: tuple[str, ...], purpose: str) -> URLSafeTimedSerializer:
    # A digest signs a dozen links: building the signer (and its key derivation) once per key set
    # and purpose keeps that off the delivery path.
    return URLSafeTimedSerializer(list(keys), salt=f"paperboy:{purpose}")


def make_token(
    purpose: str,
    *,
    subscriber_id: int | None = None,
    subscription_id: int | None = None,
    settings: Settings | None = None,
    **extra: Any,
) -> str:
    payload = {"s": subscriber_id, "sub": subscription_id, "x": extra}
    return _serializer(purpose, settings or get_settings()).dumps(payload)


# A digest's page and the archive are the digest's permanent home: their links live much longer.
_LONG_LIVED = frozenset({"digest", "archive", "feed"})


def default_max_age_s(purpose: str, settings: Settings) -> int:
    days = settings.archive_link_max_age_days if purpose in _LONG_LIVED else settings.token_max_age_days
    return days * 86400


def read_token(
    purpose: str, token: str, *, settings: Settings | None = None, max_age_s: int | None = None
) -> TokenClaims:
    """The claims of a valid token; TokenError for anything else."""
    settings = settings or get_settings()
    max_age = max_age_s if max_age_s is not None else default_max_age_s(purpose, settings)
    try:
        payload, issued = _serializer(purpose, settings).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as exc:
        raise TokenError(f"this {purpose} link has expired") from exc
    except BadSignature as exc:
        raise TokenError(f"this {purpose} link is not valid") from exc
    if not isinstance(payload, dict):
        raise TokenError(f"this {purpose} link is not valid")
    return TokenClaims(payload.get("s"), payload.get("sub"), dict(payload.get("x") or {}), issued)
