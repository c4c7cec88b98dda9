"""The secret key, and stored secrets (Slack bot tokens, incoming-webhook URLs) encrypted at rest.

`secret_keys` gives the keys newest first: SECRET_KEY (or, when unset, the random key made on first
use in VAR_DIR/secret_key, mode 0600), then OLD_SECRET_KEYS. The newest signs and encrypts; every one
still verifies and decrypts, so a rotation breaks no link and no stored secret.

`seal` encrypts with Fernet (AES-128-CBC + HMAC-SHA256, timestamped) under a key derived from the
secret key with HKDF, so the database alone never reveals a token; `unseal` gives back a `Secret`
whose repr and str are masked, so a stray log line or traceback cannot print the value.
`reseal_all` re-encrypts every stored secret under the newest key (`paperboy secrets rotate`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.config import Settings

MASK = "********"
KEY_FILE = "secret_key"


class SecretError(ValueError):
    """A stored secret that cannot be decrypted (wrong SECRET_KEY, or tampered with), or a key
    that cannot be read or made."""


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


# --- the secret key ------------------------------------------------------------------------------


def key_file(settings: Settings) -> Path:
    return settings.var_dir / KEY_FILE


def secret_keys(settings: Settings) -> list[str]:
    """Every accepted key, newest first; the first signs and encrypts."""
    configured = settings.secret_key.get_secret_value() if settings.secret_key else ""
    keys = [configured] if configured else list(_generated_keys(key_file(settings)))
    return keys + [k.get_secret_value() for k in settings.old_secret_keys if k.get_secret_value()]


def keys_read_once(settings: Settings) -> Settings:
    """`settings` with the keys in force now written into SECRET_KEY / OLD_SECRET_KEYS, for a run of
    signatures (a digest's forty links): without SECRET_KEY, secret_keys() checks the key file
    on every call."""
    if settings.secret_key and settings.secret_key.get_secret_value():
        return settings
    first, *older = secret_keys(settings)
    return settings.model_copy(
        update={"secret_key": SecretStr(first), "old_secret_keys": [SecretStr(k) for k in older]}
    )


def _generated_keys(path: Path) -> tuple[str, ...]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):
            _create_key_file(path, secrets.token_urlsafe(48))
        stat = path.stat()
    return _read_key_file(str(path), stat.st_mtime_ns, stat.st_size)


def _create_key_file(path: Path, key: str) -> None:
    """Writes a new key file only readable by its owner; FileExistsError when there is one.

    The key is written to a private temporary file first and then hard-linked into place, which
    fails if the file exists: two processes starting together never see a half-written file, and
    never each use a different key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@lru_cache(maxsize=16)
def _read_key_file(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    keys = tuple(line.strip() for line in Path(path).read_text().splitlines() if line.strip())
    if not keys:
        raise SecretError(f"{path} holds no key: delete it to have a new one made, or set SECRET_KEY")
    return keys


def add_generated_key(settings: Settings) -> None:
    """Puts a fresh random key first in VAR_DIR/secret_key, keeping the older ones after it."""
    if settings.secret_key and settings.secret_key.get_secret_value():
        raise SecretError(
            "SECRET_KEY is set: rotate by setting SECRET_KEY to the new key "
            "and OLD_SECRET_KEYS to the old one"
        )
    path = key_file(settings)
    older = list(_generated_keys(path))
    fresh = path.with_name(f".{KEY_FILE}.new.{os.getpid()}")
    fresh.unlink(missing_ok=True)
    _create_key_file(fresh, "\n".join([secrets.token_urlsafe(48), *older]))
    fresh.replace(path)


# --- stored secrets ------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    # A key of its own for stored secrets: the same secret key also signs tokens, and one key should
    # never serve two purposes. HKDF turns any string into the 32 bytes Fernet wants.
    def derive(secret_key: str) -> Fernet:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"paperboy", info=b"paperboy:stored-secrets"
        ).derive(secret_key.encode("utf-8"))
        return Fernet(base64.urlsafe_b64encode(derived))

    return MultiFernet([derive(k) for k in keys])


def seal(value: str | Secret, settings: Settings) -> str:
    """The value encrypted for the database (an ASCII Fernet token)."""
    plain = value.reveal() if isinstance(value, Secret) else value
    if not plain:
        raise ValueError("an empty secret cannot be stored")
    return _fernet(tuple(secret_keys(settings))).encrypt(plain.encode("utf-8")).decode("ascii")


def unseal(stored: str, settings: Settings) -> Secret:
    """The decrypted value of `seal`'s output; SecretError (never showing the value) otherwise."""
    try:
        plain = _fernet(tuple(secret_keys(settings))).decrypt(stored.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
        raise SecretError(
            "a stored secret cannot be decrypted: it was sealed under another SECRET_KEY or altered"
        ) from exc
    return Secret(plain.decode("utf-8"))


def _sealed_columns() -> list[object]:
    """Every column holding `seal` output: add new ones here so `reseal_all` rotates them too."""
    from service.models import Subscription

    return [Subscription.secret]


def reseal_all(session: Session, settings: Settings) -> int:
    """Re-encrypts every stored secret under the newest key; returns how many. SecretError when one
    cannot be decrypted with any accepted key (nothing is changed then)."""
    fernet = _fernet(tuple(secret_keys(settings)))
    count = 0
    for column in _sealed_columns():
        model = column.class_  # type: ignore[attr-defined]
        rows = session.scalars(select(model).where(column.is_not(None)))  # type: ignore[attr-defined]
        for row in rows:
            stored = getattr(row, column.key)  # type: ignore[attr-defined]
            try:
                fresh = fernet.rotate(stored.encode("ascii"))
            except (InvalidToken, UnicodeEncodeError) as exc:
                raise SecretError(
                    f"{model.__tablename__} {row.id}: its stored secret cannot be decrypted "
                    "with any accepted key"
                ) from exc
            setattr(row, column.key, fresh.decode("ascii"))
            count += 1
    for table_column in _sealed_table_columns():
        table = table_column.table
        found = session.execute(select(table.c.id, table_column).where(table_column.is_not(None))).all()
        for row_id, stored in found:
            try:
                fresh = fernet.rotate(stored.encode("ascii"))
            except (InvalidToken, UnicodeEncodeError) as exc:
                raise SecretError(
                    f"{table.name} {row_id}: its stored {table_column.name} cannot be decrypted "
                    "with any accepted key"
                ) from exc
            session.execute(
                update(table).where(table.c.id == row_id).values({table_column.name: fresh.decode("ascii")})
            )
            count += 1
    session.flush()
    return count


def _sealed_table_columns() -> list[Any]:
    """Sealed columns of tables without a mapped class: the Slack app's tokens (slack_sdk's stores)."""
    from service.models import slack_bots, slack_installations
    from service.slack_app.installs import SEALED_FIELDS

    return [t.c[name] for t in (slack_installations, slack_bots) for name in SEALED_FIELDS if name in t.c]
