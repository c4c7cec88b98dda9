"""The envelope sender (Return-Path) of each digest: a VERP address naming its delivery.

BOUNCE_ADDRESS `bounces@mail.example.org` gives `bounces+<subscription>.<period>.<mac>@mail.example.org`
for a digest. A bounce comes back to that exact address, so it names the delivery even when the
report quotes nothing of the original message. The mac (HMAC-SHA256 under the secret key, 60 bits, lower
case because some MTAs fold the local part) keeps a forged report from naming someone else's delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from service.config import Settings
from service.secrets import secret_keys

_PERIOD = re.compile(r"^[A-Za-z0-9-]{1,20}$")
_TAG = re.compile(r"^(?P<sub>[0-9]{1,12})\.(?P<period>[a-z0-9-]{1,20})\.(?P<mac>[0-9a-f]{15})$")


@dataclass(frozen=True)
class DeliveryRef:
    """The delivery a VERP address names (period lower-cased: compare it case-insensitively)."""

    subscription_id: int
    period: str


def _mac(key: str, subscription_id: int, period: str) -> str:
    message = f"verp:{subscription_id}.{period.lower()}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()[:15]


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local, domain.lower()


def return_path(settings: Settings, subscription_id: int, period: str) -> str | None:
    """The digest's envelope sender, or None (no BOUNCE_ADDRESS, or a period VERP cannot carry)."""
    if not settings.bounce_address or not _PERIOD.match(period):
        return None
    local, domain = _split(settings.bounce_address)
    tag = f"{subscription_id}.{period.lower()}.{_mac(secret_keys(settings)[0], subscription_id, period)}"
    return f"{local}+{tag}@{domain}"


def read_return_path(address: str, settings: Settings) -> DeliveryRef | None:
    """The delivery a bounce address names; None when it is not ours or its mac does not match."""
    if not settings.bounce_address:
        return None
    base_local, base_domain = _split(settings.bounce_address)
    local, domain = _split(address)
    prefix = base_local.lower() + "+"
    if domain != base_domain or not local.lower().startswith(prefix):
        return None
    match = _TAG.match(local[len(prefix) :].lower())
    if match is None:
        return None
    sub, period = int(match["sub"]), match["period"]
    # Every accepted key (SECRET_KEY, then OLD_SECRET_KEYS): a bounce of mail sent before a key
    # rotation still names its delivery.
    if not any(hmac.compare_digest(match["mac"], _mac(key, sub, period)) for key in secret_keys(settings)):
        return None
    return DeliveryRef(sub, period)


def is_bounce_address(address: str, settings: Settings) -> bool:
    """The plain bounce address or any VERP form of it (signed or not)."""
    if not settings.bounce_address:
        return False
    base_local, base_domain = _split(settings.bounce_address)
    local, domain = _split(address)
    local = local.lower()
    return domain == base_domain and (
        local == base_local.lower() or local.startswith(base_local.lower() + "+")
    )
