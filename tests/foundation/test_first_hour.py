"""A new user's first commands: `status` knows the next digest at once; tables read well at 80 columns."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from service.delivery.schedule import Schedule, next_send_at
from service.models import Subscription
from tests.cli import run_cli
from tests.ingest.helpers import fixture


def _next_digest_at(engine: Engine, subscription_id: int) -> dt.datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            select(Subscription.next_digest_at).where(Subscription.id == subscription_id)
        ).scalar_one()


def test_status_shows_the_next_digest_right_after_subscribing(cli_env: Engine) -> None:
    before = dt.datetime.now(dt.UTC)
    code, output = run_cli("subscribe", "ada@example.org", "-i", "sparse attention", "--time", "06:30")
    assert code == 0, output
    subscription = int(output.split()[1].rstrip(":"))
    stored = _next_digest_at(cli_env, subscription)
    schedule = Schedule(cadence="daily", send_time=dt.time(6, 30))
    assert stored is not None and stored in {next_send_at(schedule, before), next_send_at(schedule, stored)}
    code, output = run_cli("status")
    assert code == 0, output
    assert f"next digest: {stored.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" in output

    run_cli("subscriptions", "pause", str(subscription))
    assert _next_digest_at(cli_env, subscription) is None
    run_cli("subscriptions", "resume", str(subscription))
    assert _next_digest_at(cli_env, subscription) == stored


def test_a_subscription_waiting_for_confirmation_has_no_next_digest(cli_env: Engine) -> None:
    code, output = run_cli("subscribe", "bob@example.org", "-i", "kv cache", "--confirm")
    assert code == 0, output
    assert _next_digest_at(cli_env, int(output.split()[1].rstrip(":"))) is None


def _paperboy_at_80_columns(engine: Engine, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "COLUMNS": "80",
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout, result.stdout  # nothing cut short
    return result.stdout


def test_ingest_and_subscriptions_tables_are_whole_at_80_columns(cli_env: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "000_bd1b1e10c1ce267e.txt"  # the shape of the shared dumps' names
    shutil.copy(fixture("listing_small.txt"), dump)
    out = _paperboy_at_80_columns(cli_env, tmp_path, "ingest", str(dump), str(fixture("papers.jsonl")))
    assert "000_bd1b1e10c1ce267e.txt" in out and "listing (detected)" in out
    assert "3 new" in out and "rejected" in out

    interests = ["reinforcement learning from human feedback", "sparse attention", "kv cache compression"]
    args = [arg for interest in interests for arg in ("-i", interest)]
    code, output = run_cli(
        "subscribe", "a.rather.long.address@example.org", *args, "--timezone", "Europe/Paris"
    )
    assert code == 0, output
    out = _paperboy_at_80_columns(cli_env, tmp_path, "subscriptions", "list")
    flat = " ".join(out.split())
    assert all(word in flat for word in ("reinforcement", "feedback", "compression", "Europe/Paris"))
