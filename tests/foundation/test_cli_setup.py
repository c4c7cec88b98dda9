"""Setup mistakes: one line naming the setting and what to do, exit 2, nothing stored, for every command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select

from service.config import get_settings
from service.db import make_engine
from service.models import Delivery, Subscription
from tests.cli import run_cli
from tests.conftest import REPO, _drop_postgres_database, _new_database_url

SAMPLE = str(REPO / "samples" / "dumps" / "papers_sample.jsonl")
EVERYDAY = (
    ["papers", "list"],
    ["subscriptions", "list"],
    ["subscribe", "ada@example.org", "-i", "sparse attention"],
    ["ingest", SAMPLE],
    ["status"],
    ["digest", "send", "1"],
)


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's shell: VAR_DIR in tmp_path, no other paperboy settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    for name in ("DATABASE_URL", "SMTP_URL", "SMTP_FROM"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _one_line_error(args: list[str], *needles: str) -> str:
    code, output = run_cli(*args)
    assert code == 2, (args, output)
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, output)
    for needle in needles:
        assert needle in lines[0], (args, needle, output)
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("garbage", ("DATABASE_URL is not a database URL", "sqlite:///", "postgresql://")),
        ("mysql://root@localhost/papers", ("DATABASE_URL uses mysql://", "not support")),
        (
            "postgresql://u:s3cret@127.0.0.1:{port}/paperboy",
            ("DATABASE_URL", "cannot reach", "Connection refused"),
        ),
    ],
)
def test_a_database_url_paperboy_cannot_use_is_one_line(
    user: Path, monkeypatch: pytest.MonkeyPatch, url: str, needles: tuple[str, ...]
) -> None:
    monkeypatch.setenv("DATABASE_URL", url.format(port=_closed_port()))
    for args in [*EVERYDAY, ["db", "upgrade"]]:
        line = _one_line_error(args, *needles)
        assert "s3cret" not in line


def test_a_postgresql_database_that_does_not_exist_is_named(
    user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _new_database_url("postgresql", user, "setup_probe")  # skips when PostgreSQL is not there
    _drop_postgres_database(url)
    monkeypatch.setenv("DATABASE_URL", url)
    name = url.rsplit("/", 1)[1]
    for args in EVERYDAY:
        _one_line_error(args, "DATABASE_URL", f"{name!r} does not exist", f"createdb {name}")


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated(
    request: pytest.FixtureRequest, user: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An empty database that `paperboy db upgrade` never saw, named by DATABASE_URL."""
    url = _new_database_url(request.param, user, "unmigrated")
    monkeypatch.setenv("DATABASE_URL", url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    _drop_postgres_database(url)


def test_commands_before_db_upgrade_say_to_run_it(unmigrated: Engine) -> None:
    for args in EVERYDAY:
        _one_line_error(args, "no paperboy schema", "paperboy db upgrade")
    assert inspect(unmigrated).get_table_names() == []  # nothing was created behind the user's back
    code, output = run_cli("db", "upgrade")
    assert code == 0, output
    code, output = run_cli("papers", "list")
    assert code == 0, output


def test_a_sqlite_file_in_a_missing_folder_is_refused_not_created(
    user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = user / "no" / "such"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{(folder / 'paperboy.db').as_posix()}")
    for args in (["db", "upgrade"], ["papers", "list"], ["subscribe", "ada@example.org", "-i", "x"]):
        _one_line_error(args, "DATABASE_URL", str(folder), "does not exist")
    assert not (user / "no").exists()


def test_the_default_database_folder_is_made_on_a_fresh_machine(user: Path) -> None:
    code, output = run_cli("db", "upgrade")
    assert code == 0, output
    assert (user / "var" / "paperboy.db").is_file()


def test_a_setting_of_the_wrong_type_is_one_line(user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_INTERVAL_S", "often")
    _one_line_error(["status"], "setting DISPATCH_INTERVAL_S", "integer", ".env")


def _subscribe(*extra: str) -> int:
    code, output = run_cli("subscribe", "ada@example.org", "-i", "sparse attention", *extra)
    assert code == 0, output
    return int(output.split()[1].rstrip(":"))


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_an_smtp_url_that_is_not_a_url_stops_before_anything_is_claimed(
    cli_env: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription = _subscribe()
    monkeypatch.setenv("SMTP_URL", "notaurl")
    get_settings.cache_clear()
    _one_line_error(["digest", "send", str(subscription)], "SMTP_URL", "smtp://")
    _one_line_error(["dispatch", "--now"], "SMTP_URL")
    _one_line_error(["subscribe", "bob@example.org", "-i", "kv cache", "--confirm"], "SMTP_URL")
    assert _count(cli_env, Delivery) == 0  # no period left claimed and stuck
    assert _count(cli_env, Subscription) == 1


@pytest.mark.parametrize(
    ("cadence", "period", "needle"),
    [
        ([], "banana", "not a daily period (YYYY-MM-DD"),
        ([], "2026-13-45", "not a daily period"),
        ([], "20261123", "not a daily period"),
        ([], "2999-01-01", "has not come yet"),
        (["--cadence", "weekly", "--weekday", "mon"], "2026-11-23", "not a weekly period (YYYY-Www"),
        (["--cadence", "weekly", "--weekday", "mon"], "2026-W54", "not a weekly period"),
        (["--cadence", "weekdays"], "2026-11-22", "is a Sunday"),
    ],
)
def test_digest_send_refuses_a_period_its_schedule_never_has(
    cli_env: Engine, cadence: list[str], period: str, needle: str
) -> None:
    subscription = _subscribe(*cadence)
    for command in ("send", "preview"):
        _one_line_error(["digest", command, str(subscription), "--period", period], "--period", needle)
    assert _count(cli_env, Delivery) == 0


def test_digest_send_takes_a_real_past_period(cli_env: Engine) -> None:
    subscription = _subscribe()
    code, output = run_cli("digest", "send", str(subscription), "--period", "2026-11-23")
    assert code == 0, output
    assert "period 2026-11-23" in output
