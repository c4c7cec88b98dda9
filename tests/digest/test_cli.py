"""`paperboy subscribe / subscriptions list / unsubscribe / digest preview|send`, through Typer's runner."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.db import session_scope
from service.models import Delivery, Subscription
from tests.digest.helpers import add_paper
from tests.smtp_server import SmtpServer, smtp_server

runner = CliRunner()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def cli_db(
    committed_engine: Engine, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The CLI pointed at the test database and the loopback SMTP server, as an operator would."""
    monkeypatch.setenv("DATABASE_URL", committed_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("SMTP_RATE_PER_S", "0")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield committed_engine
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def subscriptions() -> list[dict[str, object]]:
    code, out = run("subscriptions", "list", "--all", "--json")
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines()]


def test_subscribe_list_and_unsubscribe(cli_db: Engine, smtp: SmtpServer) -> None:
    code, out = run(
        "subscribe", "Ada@Example.org", "-i", "sparse attention", "-i", "kv cache", "--time", "07:15"
    )
    assert code == 0, out
    assert "ada@example.org, sparse attention, kv cache, daily at 07:15 UTC (active)" in out
    code, out = run("subscribe", "ada@example.org", "-i", "moe", "--cadence", "weekly", "--weekday", "fri")
    assert code == 0, out
    rows = subscriptions()
    assert [(r["email"], r["schedule"], r["status"]) for r in rows] == [
        ("ada@example.org", "daily at 07:15 UTC", "active"),
        ("ada@example.org", "weekly on Friday at 08:00 UTC", "active"),
    ]
    code, out = run("subscriptions", "list")
    assert code == 0 and "sparse attention, kv cache" in out
    code, out = run("unsubscribe", str(rows[0]["id"]))
    assert code == 0 and f"unsubscribed: {rows[0]['id']}" in out
    code, out = run("unsubscribe", "--email", "ADA@example.org")
    assert code == 0 and f"unsubscribed: {rows[1]['id']}" in out
    assert [r["status"] for r in subscriptions()] == ["unsubscribed", "unsubscribed"]
    assert smtp.messages == []


def test_bad_input_exits_2_and_says_what(cli_db: Engine) -> None:
    code, out = run("subscribe", "not-an-address", "-i", "x")
    assert code == 2 and "error: email: 'not-an-address' is not a valid address" in out
    code, out = run("subscribe", "a@example.org", "-i", "x", "--timezone", "Mars/Olympus")
    assert code == 2 and "Mars/Olympus" in out
    code, out = run("unsubscribe", "999999")
    assert code == 2 and "no such subscription" in out
    code, out = run("digest", "send", "999999")
    assert code == 2 and "does not exist" in out
    assert subscriptions() == []


def test_subscribe_with_confirmation_email(cli_db: Engine, smtp: SmtpServer) -> None:
    code, out = run("subscribe", "b@example.org", "-i", "moe", "--confirm")
    assert code == 0, out
    assert "(pending)" in out and "confirmation email sent to b@example.org" in out
    msg = smtp.messages[0].message
    assert msg["Subject"] == "Confirm your paperboy subscription"
    assert "/confirm/" in msg.get_body(("plain",)).get_content()
    body = msg.get_body(("plain",)).get_content()
    # The interests' text is counted, never echoed to an unconfirmed address (security finding 4).
    assert "a digest on 1 topic (daily at 08:00 UTC)" in body and "moe" not in body


def test_digest_preview_dry_run_and_send(cli_db: Engine, smtp: SmtpServer, tmp_path: Path) -> None:
    code, out = run("subscribe", "c@example.org", "-i", "sparse attention")
    assert code == 0, out
    sub_id = str(subscriptions()[0]["id"])
    # The CLI reads the real clock, so the papers are seen hours before it (a fixed date falls out of the
    # first digest's 7-day lookback a week later).
    seen = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    with session_scope(cli_db) as session:
        add_paper(
            session,
            "arxiv:2611.00001",
            "Sparse attention <b>for</b> everyone",
            "We make sparse attention cheap.",
            seen=seen,
        )
        add_paper(session, "arxiv:2611.00002", "Protein folding", "Nothing about transformers.", seen=seen)

    code, out = run("digest", "preview", sub_id, "--format", "text")
    assert code == 0, out
    assert out.startswith("Subject: 1 new paper on sparse attention · ")
    assert "Sparse attention <b>for</b> everyone" in out and "Protein folding" not in out
    target = tmp_path / "preview.html"
    code, out = run("digest", "preview", sub_id, "--format", "html", "-o", str(target))
    assert code == 0 and "1 papers" in out
    assert "Sparse attention &lt;b&gt;for&lt;/b&gt; everyone" in target.read_text()

    code, out = run("digest", "send", sub_id, "--period", "2026-11-23", "--dry-run")
    assert code == 0 and "would send to c@example.org via smtp://127.0.0.1:" in out
    with session_scope(cli_db) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert smtp.messages == []

    code, out = run("digest", "send", sub_id, "--period", "2026-11-23")
    assert code == 0, out
    assert "1 papers sent (<digest." in out
    assert len(smtp.messages) == 1
    code, out = run("digest", "send", sub_id, "--period", "2026-11-23")
    assert code == 3 and "already sent" in out
    code, out = run("digest", "send", sub_id, "--period", "2026-11-24")
    assert code == 0 and "no new papers" in out
    smtp.handler.script("rcpt", "451 4.3.0 later")
    with session_scope(cli_db) as session:
        # Seen after the previous (real-time) delivery, so it is new for the next period.
        add_paper(
            session,
            "arxiv:2611.00003",
            "More sparse attention",
            "Sparse attention again.",
            seen=dt.datetime.now(dt.UTC),
        )
    code, out = run("digest", "send", sub_id, "--period", "2026-11-25")
    assert code == 75 and "will retry at" in out
    assert len(smtp.messages) == 1


def test_pause_and_resume_from_the_cli(cli_db: Engine) -> None:
    code, out = run("subscribe", "p@example.org", "-i", "sparse attention")
    assert code == 0, out
    sub_id = subscriptions()[0]["id"]
    with session_scope(cli_db) as session:
        session.get(Subscription, sub_id).needs_attention = "smtp: mailbox full"
    code, out = run("subscriptions", "pause", str(sub_id))
    assert code == 0 and f"subscription {sub_id} paused" in out
    with session_scope(cli_db) as session:
        assert session.get(Subscription, sub_id).paused
    code, out = run("subscriptions", "resume", str(sub_id))
    assert code == 0, out
    with session_scope(cli_db) as session:
        sub = session.get(Subscription, sub_id)
        assert not sub.paused and sub.needs_attention is None
    code, out = run("subscriptions", "pause", "999999")
    assert code == 2 and "no such active subscription" in out


def test_deliveries_list_and_resolve_name_bad_input(cli_db: Engine, smtp: SmtpServer) -> None:
    code, out = run("subscribe", "d@example.org", "-i", "sparse attention")
    sub_id = str(subscriptions()[0]["id"])
    with session_scope(cli_db) as session:
        add_paper(
            session, "arxiv:2611.00009", "Sparse attention", "Sparse attention.", seen=dt.datetime.now(dt.UTC)
        )
    code, out = run("digest", "send", sub_id, "--period", "2026-11-23")
    assert code == 0, out
    code, out = run("deliveries", "list", "--subscription", sub_id)
    assert code == 0 and "2026-11-23" in out and "sent" in out
    code, out = run("deliveries", "list", "--status", "lost")
    assert code == 2 and "--status must be one of" in out
    with session_scope(cli_db) as session:
        delivery_id = session.scalars(select(Delivery.id)).one()
    code, out = run("deliveries", "resolve", str(delivery_id), "--resend")
    assert code == 2 and "is 'sent', not 'claimed'" in out
    code, out = run("deliveries", "resolve", "999999", "--sent")
    assert code == 2 and "no such delivery" in out
