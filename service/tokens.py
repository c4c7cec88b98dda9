"""Signed, expiring, purpose-scoped tokens for links in digests and pages."""

from __future__ import annotations

import binascii
import datetime as dt
import hmac
import json
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm

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


def _serializer(purpose: str, settings: Settings) -> _Signing:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    # The purpose is the salt: a token signed for one purpose never verifies for another. itsdangerous
    # signs with the last key of the list and verifies with any, so old keys still open old links.
    return _signer(tuple(reversed(secret_keys(settings))), purpose)


class _Signing:
    """itsdangerous' URLSafeTimedSerializer, with `dumps` signing from a MAC keyed once.

    Its own dumps builds a TimestampSigner and derives the key again for every token; a digest signs
    about forty (feedback and follow links per paper), which made signing a fifth of the delivery
    step. The bytes are the same (tests/security/test_token_signing.py); `loads` is itsdangerous'.
    """

    def __init__(self, keys: tuple[str, ...], purpose: str) -> None:
        self.serializer = URLSafeTimedSerializer(list(keys), salt=f"paperboy:{purpose}")
        signer = self.serializer.make_signer()
        if not isinstance(signer.algorithm, HMACAlgorithm):  # pragma: no cover - itsdangerous' default
            raise TypeError("tokens are signed with HMAC")
        self._mac = hmac.new(signer.derive_key(), digestmod=signer.algorithm.digest_method)
        self._sep = want_bytes(signer.sep)
        self._stamp = (0, b"")  # (second, its encoded form): tokens signed in the same second share it

    def dumps(self, obj: Any) -> str:
        # itsdangerous' URLSafeSerializer.dump_payload: compact JSON, zlib-compressed (marked by a
        # leading ".") only when that is shorter, URL-safe base64 without padding.
        data = _JSON.encode(obj).encode("utf-8")
        compressed = zlib.compress(data)
        payload = b"." + _b64(compressed) if len(compressed) < len(data) - 1 else _b64(data)
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, _b64(int_to_bytes(now)))
        value = payload + self._sep + self._stamp[1]
        mac = self._mac.copy()
        mac.update(value)
        return (value + self._sep + _b64(mac.digest())).decode("ascii")

    def loads(self, token: str, *, max_age: int, return_timestamp: bool) -> Any:
        return self.serializer.loads(token, max_age=max_age, return_timestamp=return_timestamp)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


@lru_cache(maxsize=64)
def _signer(keys: tuple[str, ...], purpose: str) -> _Signing:
    # Built once per key set and purpose: key derivation stays off the delivery path.
    return _Signing(keys, purpose)


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
