"""Stored Slack secrets: sealed with Fernet under SECRET_KEY, never shown by repr or str."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.secrets import Secret, SecretError, seal, unseal
from tests.slack.conftest import make_settings

TOKEN = "xoxb-1234-5678-abcdefabcdef"


def test_a_sealed_token_comes_back_and_is_unreadable_stored(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    stored = seal(TOKEN, settings)
    assert TOKEN not in stored and "xoxb" not in stored and stored.isascii()
    assert seal(TOKEN, settings) != stored  # a fresh IV every time: equal tokens do not look equal
    assert unseal(stored, settings).reveal() == TOKEN


def test_another_key_or_a_changed_byte_cannot_unseal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    stored = seal(TOKEN, settings)
    other = settings.model_copy(update={"secret_key": SecretStr("another-key")})
    for attempt in (lambda: unseal(stored, other), lambda: unseal(stored[:-3] + "AAA", settings)):
        with pytest.raises(SecretError) as failure:
            attempt()
        assert TOKEN not in str(failure.value)
    with pytest.raises(SecretError):
        unseal("not even base64 ✓", settings)


def test_a_secret_never_prints_itself() -> None:
    secret = Secret(TOKEN)
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"token": secret})):
        assert TOKEN not in shown
    assert secret == Secret(TOKEN) and secret.reveal() == TOKEN
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_an_empty_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        seal("", make_settings(tmp_path))
