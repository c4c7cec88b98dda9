"""Finding 6: an error about the settings never prints a secret's value."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import Engine

from tests.security.conftest import _paperboy, server_env

SIGNING = "visible-signing-secret-5b1f"
SMTP_PASSWORD = "smtp-password-77ac"
ADMIN = "admin-token-9d02"


def _run(engine: Engine, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = server_env(
        engine,
        tmp_path / "var",
        SLACK_SIGNING_SECRET=SIGNING,
        ADMIN_TOKEN=ADMIN,
        SMTP_URL=f"smtp://user:{SMTP_PASSWORD}@127.0.0.1:1",
        **env,
    )
    return subprocess.run(
        [*_paperboy(), *args], env=environment, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def test_production_without_a_key_refuses_without_printing_secrets(
    committed_engine: Engine, tmp_path: Path
) -> None:
    for args in (["web", "--port", "0"], ["status"]):
        done = _run(committed_engine, tmp_path, *args, ENVIRONMENT="production", SECRET_KEY="")
        output = done.stdout + done.stderr
        assert done.returncode == 2, output
        assert "SECRET_KEY must be set" in output
        for secret in (SIGNING, SMTP_PASSWORD, ADMIN):
            assert secret not in output, f"{args}: a secret value is printed"
        assert "Traceback" not in output


def test_a_malformed_setting_is_named_and_its_value_not_printed(
    committed_engine: Engine, tmp_path: Path
) -> None:
    done = _run(committed_engine, tmp_path, "status", OLD_SECRET_KEYS="not-json-old-key-4471")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "old_secret_keys" in output.lower()
    assert "not-json-old-key-4471" not in output
    for secret in (SIGNING, SMTP_PASSWORD, ADMIN):
        assert secret not in output
