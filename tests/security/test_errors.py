"""Finding 9: a 500 carries the security headers; a deeply nested Slack payload is a 400."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine

from service.config import Settings
from service.web.app import create_app
from tests.security.conftest import SECRET, SIGNING_SECRET


def _app(database_url: str, engine: Engine, tmp_path: Path) -> FastAPI:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET,  # type: ignore[arg-type]
        slack_signing_secret=SIGNING_SECRET,  # type: ignore[arg-type]
        base_url="http://testserver",
    )
    return create_app(settings, engine)


def test_a_500_carries_the_security_headers(
    serve: Callable[[object], str], database_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    app = _app(database_url, committed_engine, tmp_path)

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    url = serve(app)
    answer = httpx.get(url + "/fails")
    assert answer.status_code == 500
    assert "default-src 'none'" in answer.headers.get("content-security-policy", "")
    assert answer.headers.get("x-frame-options") == "DENY"
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert answer.headers.get("cache-control") == "no-store"
    assert "a bug" not in answer.text and "Traceback" not in answer.text


def test_a_deeply_nested_slack_payload_is_a_400(
    serve: Callable[[object], str], database_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    url = serve(_app(database_url, committed_engine, tmp_path))
    body = urlencode({"payload": "[" * 20_000 + "]" * 20_000}).encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    answer = httpx.post(
        url + "/slack/interactions",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
    )
    assert answer.status_code == 400, answer.text
    assert "content-security-policy" in answer.headers
