"""Finding 4: a stranger's text never rides in paperboy's confirmation email, and an address gets a
bounded number of them a day."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.config import Settings
from service.web.app import create_app
from tests.security.conftest import SECRET
from tests.web.helpers import outbox, subscribe_form, text_of

LURE = "urgent visit www.evil-example.com/login now"


def _client(
    database_url: str, engine: Engine, tmp_path: Path, **overrides: object
) -> tuple[TestClient, Settings]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET,  # type: ignore[arg-type]
        base_url="http://testserver",
        **overrides,  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings, engine)), settings


def test_the_confirmation_email_carries_no_typed_text(
    database_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    client, settings = _client(database_url, committed_engine, tmp_path)
    form = subscribe_form(client, email="victim@example.org", keywords=f"{LURE}, sparse attention")
    form["query"] = '"evil-example" OR login'
    assert client.post("/subscribe", data=form).status_code == 200
    [message] = outbox(settings)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text_of(message), html, str(message["Subject"])):
        assert "evil-example" not in part and "urgent" not in part
    assert re.search(r"a digest on \d+ topics", text_of(message)), text_of(message)  # said, not shown


def test_an_address_gets_at_most_the_daily_number_of_confirmations(
    database_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    # The hourly limit is lifted here: the daily bound must hold on its own.
    client, settings = _client(
        database_url,
        committed_engine,
        tmp_path,
        subscribe_limit_per_address=1000,
        subscribe_limit_per_ip=1000,
    )
    for n in range(12):
        answer = client.post(
            "/subscribe", data=subscribe_form(client, email="victim@example.org", keywords=f"topic {n}")
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert len(outbox(settings)) == settings.confirm_emails_per_address_day
