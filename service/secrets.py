"""Stored secrets (Slack bot tokens, incoming-webhook URLs): encrypted at rest, hidden when printed.

`seal` encrypts with Fernet (AES-128-CBC + HMAC-SHA256, timestamped) under a key derived from
SECRET_KEY with HKDF, so the database alone never reveals a token; `unseal` gives back a `Secret`
whose repr and str are masked, so a stray log line or traceback cannot print the value.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.config import Settings

MASK = "********"


class SecretError(ValueError):
    """A stored secret that cannot be decrypted (wrong SECRET_KEY, or tampered with)."""


class Secret:
    """A secret value that never prints itself: use `reveal()` at the one place it is needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value somewhere it was not meant to go.
        raise TypeError("a Secret cannot be pickled")


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    # A key of its own for stored secrets: the same SECRET_KEY also signs tokens, and one key should
    # never serve two purposes. HKDF turns any string into the 32 bytes Fernet wants.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"paperboy", info=b"paperboy:stored-secrets"
    ).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(value: str | Secret, settings: Settings) -> str:
    """The value encrypted for the database (an ASCII Fernet token)."""
    plain = value.reveal() if isinstance(value, Secret) else value
    if not plain:
        raise ValueError("an empty secret cannot be stored")
    return _fernet(settings.secret_key.get_secret_value()).encrypt(plain.encode("utf-8")).decode("ascii")


def unseal(stored: str, settings: Settings) -> Secret:
    """The decrypted value of `seal`'s output; SecretError (never showing the value) otherwise."""
    try:
        plain = _fernet(settings.secret_key.get_secret_value()).decrypt(stored.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
        raise SecretError(
            "a stored secret cannot be decrypted: it was sealed under another SECRET_KEY or altered"
        ) from exc
    return Secret(plain.decode("utf-8"))
