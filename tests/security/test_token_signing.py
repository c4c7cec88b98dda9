"""Tokens signed on the delivery path are exactly what itsdangerous signs, and read back the same."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer
from pydantic import SecretStr

from service.config import Settings
from service.secrets import keys_read_once, secret_keys
from service.tokens import make_token, read_token


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, secret_key="k" * 40)  # type: ignore[call-arg]


PAYLOADS = [
    ("feedback", {"subscription_id": 7, "paper": 12, "relevant": True}),
    ("feedback", {"subscription_id": 7, "paper": 12, "relevant": False}),
    ("follow", {"subscriber_id": 3, "subscription_id": 7, "paper": 99, "action": "seed"}),
    ("digest", {"subscriber_id": None, "subscription_id": 7, "period": "2026-W48"}),
    ("unsubscribe", {"subscriber_id": 2**40, "subscription_id": 1}),
    ("manage", {"subscriber_id": 0, "subscription_id": None, "note": "é ü 中文 \u202e"}),
]


@pytest.mark.parametrize(("purpose", "claims"), PAYLOADS)
def test_a_token_is_byte_for_byte_the_one_itsdangerous_signs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, purpose: str, claims: dict[str, object]
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_123.75)
    keys = list(reversed(secret_keys(settings)))
    reference = URLSafeTimedSerializer(keys, salt=f"paperboy:{purpose}")
    extra = {k: v for k, v in claims.items() if k not in ("subscriber_id", "subscription_id")}
    expected = reference.dumps(
        {"s": claims.get("subscriber_id"), "sub": claims.get("subscription_id"), "x": extra}
    )
    token = make_token(purpose, settings=settings, **claims)  # type: ignore[arg-type]
    assert token == expected
    read = read_token(purpose, token, settings=settings, max_age_s=10**9)
    assert (read.subscriber_id, read.subscription_id, read.extra) == (
        claims.get("subscriber_id"),
        claims.get("subscription_id"),
        extra,
    )


def test_tokens_follow_the_clock_and_a_rotated_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0)
    first = make_token("manage", subscriber_id=1, settings=settings)
    monkeypatch.setattr(time, "time", lambda: 1_790_000_001.0)
    assert make_token("manage", subscriber_id=1, settings=settings) != first
    rotated = settings.model_copy(
        update={"secret_key": SecretStr("n" * 40), "old_secret_keys": [settings.secret_key]}
    )
    newer = make_token("manage", subscriber_id=1, settings=rotated)
    assert read_token("manage", newer, settings=rotated, max_age_s=10**9).subscriber_id == 1
    with pytest.raises(Exception, match="not valid"):
        read_token("manage", newer, settings=settings, max_age_s=10**9)


def test_keys_read_once_sign_as_the_key_file_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0)
    generated = Settings(_env_file=None, var_dir=tmp_path, old_secret_keys=["o" * 40])  # type: ignore[call-arg]
    pinned = keys_read_once(generated)
    assert secret_keys(pinned) == secret_keys(generated)
    assert make_token("feedback", subscription_id=3, settings=pinned, paper=1, relevant=True) == make_token(
        "feedback", subscription_id=3, settings=generated, paper=1, relevant=True
    )
