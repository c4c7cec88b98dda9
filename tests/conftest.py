"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL, one test at a time."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from service.db import make_engine
from service.migrations import upgrade
from service.models import Base

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PG_SERVER = os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def shared_path(*parts: str) -> Path:
    """A file under ../shared; skipped (failed in CI) when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is not present (../shared beside the repository)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _postgres_database(name: str) -> str:
    """Create a fresh, empty database `name` on the test server and return its URL."""
    admin = make_engine(f"{PG_SERVER}/test")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        message = f"PostgreSQL at {PG_SERVER} is unreachable: {type(exc).__name__}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    finally:
        admin.dispose()
    return f"{PG_SERVER}/{name}"


def _new_database_url(kind: str, tmp_dir: Path, label: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{(tmp_dir / f'{label}.db').as_posix()}"
    # The process id keeps concurrent test runs on one server (two developers' shells, xdist
    # workers) out of each other's databases.
    return _postgres_database(f"paperboy_test_{label}_{os.getpid()}")


def _drop_postgres_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    admin = make_engine(f"{PG_SERVER}/test")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Commands run in-process (`run`, `dispatch`, `worker`) point the root logger at the CLI runner's
    captured stderr, which is closed after the call; a later log line from a server thread would print a
    logging error into the next command's output. Each test gets the root logger back as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head by Alembic, once per backend per session."""
    url = _new_database_url(request.param, tmp_path_factory.mktemp("db"), "shared")
    upgrade(url)
    yield url
    _drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test: commits become savepoints."""
    with engine.connect() as conn:
        trans = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            trans.rollback()


@pytest.fixture
def cli_env(committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The `paperboy` command configured as an operator would: DATABASE_URL names the test database,
    VAR_DIR a temporary folder. Add further settings with monkeypatch.setenv before running it."""
    from service.config import get_settings

    monkeypatch.setenv("DATABASE_URL", committed_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables are not folded in the captured output
    get_settings.cache_clear()
    yield committed_engine
    get_settings.cache_clear()


@pytest.fixture
def committed_engine(engine: Engine) -> Iterator[Engine]:
    """The engine for tests whose work must really commit (several connections, processes);
    every table is emptied afterwards."""
    yield engine
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
