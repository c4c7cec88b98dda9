"""The operator commands: run --once/--demo, dispatch, ingest-sources, sources, status; exit codes."""

from __future__ import annotations

import email
import email.policy
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.db import get_engine
from service.migrations import upgrade
from service.models import Subscriber, Subscription
from tests.scheduler.helpers import subscribe, utc

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SQLite paperboy in tmp_path/var, configured through the environment like a user would."""
    var = tmp_path / "var"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAR_DIR", str(var))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{(var / 'paperboy.db').as_posix()}")
    monkeypatch.setenv("SEND_EMPTY_DIGESTS", "true")
    monkeypatch.setenv("DROP_SETTLE_S", "0")
    monkeypatch.setenv("FEED_ALLOW_PRIVATE_ADDRESSES", "true")  # the feed server is on loopback
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.delenv("HTTP_SOURCES", raising=False)
    get_settings.cache_clear()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield var
    for sig, handler in handlers.items():  # the commands install their own; give pytest its own back
        signal.signal(sig, handler)
    get_settings.cache_clear()


def migrate() -> None:
    get_engine(get_settings())  # as `paperboy db upgrade` does: creates VAR_DIR, where the database lives
    upgrade(get_settings().resolved_database_url)


def test_commands_refuse_an_unmigrated_database(home: Path) -> None:
    for args in (["run", "--once"], ["dispatch", "--now"], ["status"], ["sources", "list"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert "paperboy db upgrade" in result.output


def test_sources_add_list_remove(home: Path) -> None:
    migrate()
    ok = runner.invoke(
        app, ["sources", "add", "hf", "https://feeds.example.org/daily.json", "--format", "hf_api"]
    )
    assert ok.exit_code == 0, ok.output
    for args, message in (
        (["sources", "add", "hf", "https://other.example.org/"], "already exists"),
        (["sources", "add", "x", "ftp://example.org/feed"], "not an http(s) URL"),
        (["sources", "add", "y", "https://example.org/", "--format", "pdf"], "'pdf' is not one of"),
        (["sources", "remove", "nope"], "no source named 'nope'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    listed = runner.invoke(app, ["sources", "list"])
    assert "hf: https://feeds.example.org/daily.json (hf_api, enabled)" in listed.output
    assert "never polled" in listed.output
    assert runner.invoke(app, ["sources", "remove", "hf"]).exit_code == 0
    assert "no sources" in runner.invoke(app, ["sources", "list"]).output


def test_ingest_sources_once_with_exit_codes(home: Path) -> None:
    migrate()
    assert runner.invoke(app, ["ingest-sources"]).exit_code == 2
    drop = home / "drop"
    drop.mkdir(parents=True)
    (drop / "good.jsonl").write_text('{"title": "Sparse attention again", "abstract": "We look again."}\n')
    dry = runner.invoke(app, ["ingest-sources", "--dry-run"])
    assert dry.exit_code == 0 and "1 file(s) waiting" in dry.output and "good.jsonl" in dry.output
    assert (drop / "good.jsonl").exists()  # a dry run reads nothing
    done = runner.invoke(app, ["ingest-sources", "--now"])
    assert done.exit_code == 0, done.output
    assert "drop good.jsonl: processed done new=1" in done.output
    (drop / "bad.txt").write_bytes(b"")
    failed = runner.invoke(app, ["ingest-sources", "--now"])
    assert failed.exit_code == 1 and "drop bad.txt: rejected" in failed.output


def test_dispatch_now_and_status(home: Path) -> None:
    migrate()
    engine = get_engine(get_settings())
    sid = subscribe(engine, "ops@example.org")
    flagged = subscribe(engine, "bounced@example.org")
    with Session(engine) as s, s.begin():
        s.execute(update(Subscription).values(next_digest_at=utc(2020, 1, 1)))
        s.execute(update(Subscriber).where(Subscriber.email == "bounced@example.org").values(flagged=True))
    assert runner.invoke(app, ["dispatch"]).exit_code == 2
    dry = runner.invoke(app, ["dispatch", "--dry-run"])
    assert dry.exit_code == 0 and "2 subscription(s) due" in dry.output
    assert f"subscription {sid} email:ops@example.org period" in dry.output
    assert not (home / "outbox").exists()
    sent = runner.invoke(app, ["dispatch", "--now"])
    assert sent.exit_code == 0, sent.output
    assert "sent=1" in sent.output and "skipped=1" in sent.output
    assert len(list((home / "outbox").glob("*.eml"))) == 1
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["deliveries_24h"] == {"sent": 1, "pending": 0, "failed": 0, "empty": 0}
    assert data["scheduler"]["holder"] is None and data["due_now"] == 0
    assert [a["subscription"] for a in data["needs_attention"]] == [flagged]
    text = runner.invoke(app, ["status"])
    assert "deliveries (24 h): sent=1 pending=0 failed=0" in text.output
    assert "no instance holds the lease" in text.output
    assert f"subscription {flagged} bounced@example.org: address flagged" in text.output


def test_run_once_does_one_ingest_and_one_dispatch_pass(home: Path) -> None:
    migrate()
    (home / "drop").mkdir(parents=True)
    (home / "drop" / "one.jsonl").write_text('{"title": "Once", "abstract": "Only once."}\n')
    result = runner.invoke(app, ["run", "--once"])
    assert result.exit_code == 0, result.output
    assert (home / "drop" / "processed" / "one.jsonl").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("service.digest.rank") is None, reason="the digest ranker has not landed yet"
)
def test_run_demo_on_a_fresh_machine_leaves_a_digest_in_the_outbox(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMTP_URL", "VAR_DIR")}
    result = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "run", "--demo", "--max-seconds", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "var" / "paperboy.db").exists()
    [eml] = list((tmp_path / "var" / "outbox").glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "demo-reader@example.org"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    # Papers from the shipped samples that match the demo interests.
    assert "Blockwise Sparse Attention for Million-Token Contexts" in text
    assert "event=ingest_run source=samples" in result.stderr and "event=delivery" in result.stderr
    assert "event=stopped" in result.stderr
    # Run again: nothing new is sent, nothing breaks.
    again = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "run", "--demo", "--max-seconds", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 1
