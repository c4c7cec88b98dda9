"""Finding 3: no built-in SECRET_KEY; a random one is made on first use; keys rotate."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.links import manage_url
from service.models import Subscription
from service.secrets import seal, unseal
from service.tokens import TokenError, make_token, read_token
from tests.cli import run_cli
from tests.security.conftest import LiveServer
from tests.web.helpers import make_subscription

FORMER_DEFAULT = "dev-only-change-me"


def test_an_unset_key_is_random_stored_0600_and_the_old_default_opens_nothing(
    start_server, committed_engine: Engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ada = make_subscription(committed_engine, "ada@example.org")
    server: LiveServer = start_server(SECRET_KEY="")
    forged = URLSafeTimedSerializer(FORMER_DEFAULT, salt="paperboy:manage").dumps(
        {"s": ada.subscriber_id, "sub": ada.id, "x": {}}
    )
    assert httpx.get(f"{server.url}/manage/{forged}").status_code == 404

    key_file = tmp_path / "var" / "secret_key"
    assert key_file.exists(), "no key was generated in VAR_DIR"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().split()[0]) >= 43  # 256 bits or more
    # The same key serves every process reading this VAR_DIR: a link the CLI makes opens in the web app.
    same_var = Settings(_env_file=None, var_dir=tmp_path / "var", base_url=server.url)  # type: ignore[call-arg]
    assert httpx.get(manage_url(ada.subscriber_id or 0, ada.id, same_var)).status_code == 200


def test_two_var_dirs_get_different_keys(tmp_path: Path) -> None:
    one = Settings(_env_file=None, var_dir=tmp_path / "a")  # type: ignore[call-arg]
    two = Settings(_env_file=None, var_dir=tmp_path / "b")  # type: ignore[call-arg]
    token = make_token("manage", subscriber_id=1, settings=one)
    assert read_token("manage", token, settings=one).subscriber_id == 1
    with pytest.raises(TokenError):
        read_token("manage", token, settings=two)


def _key_settings(tmp_path: Path, key: str, old: list[str] | None = None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        var_dir=tmp_path,
        secret_key=SecretStr(key),
        old_secret_keys=[SecretStr(k) for k in old or []],
    )


def test_rotation_old_tokens_verify_and_stored_secrets_are_reencrypted(
    cli_env: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _key_settings(tmp_path, "the-old-key")
    sub = make_subscription(cli_env, "slack-owner@example.org")
    with Session(cli_env) as session:
        session.get(Subscription, sub.id).secret = seal("xoxb-rotate-me", old)  # type: ignore[union-attr]
        session.commit()
    token = make_token("manage", subscriber_id=7, settings=old)

    rotating = _key_settings(tmp_path, "the-new-key", ["the-old-key"])
    assert read_token("manage", token, settings=rotating).subscriber_id == 7
    with pytest.raises(TokenError):  # new tokens are signed with the new key only
        read_token("manage", make_token("manage", subscriber_id=7, settings=rotating), settings=old)

    monkeypatch.setenv("SECRET_KEY", "the-new-key")
    monkeypatch.setenv("OLD_SECRET_KEYS", '["the-old-key"]')
    code, output = run_cli("secrets", "rotate")
    assert code == 0, output
    assert "1 stored secret" in output
    assert "the-old-key" not in output and "the-new-key" not in output and "xoxb" not in output

    new_only = _key_settings(tmp_path, "the-new-key")
    with Session(cli_env) as session:
        stored = session.scalar(select(Subscription.secret).where(Subscription.id == sub.id))
    assert stored is not None
    assert unseal(stored, new_only).reveal() == "xoxb-rotate-me"


def test_rotating_the_generated_key_keeps_old_links_working(
    cli_env: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    before = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    token = make_token("manage", subscriber_id=3, settings=before)
    first_key = (tmp_path / "secret_key").read_text().split()[0]

    code, output = run_cli("secrets", "rotate", "--new-key")
    assert code == 0, output
    keys = (tmp_path / "secret_key").read_text().split()
    assert keys[1] == first_key and keys[0] != first_key
    after = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    assert read_token("manage", token, settings=after).subscriber_id == 3
    fresh = make_token("manage", subscriber_id=3, settings=after)
    with pytest.raises(TokenError):
        read_token("manage", fresh, settings=_key_settings(tmp_path, first_key))
