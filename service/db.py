"""Engine and session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings, SetupError, get_settings

DATABASE_URL_FORMS = "sqlite:///path/to/paperboy.db or postgresql://user@host:5432/paperboy"
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def check_database_url(url: str) -> None:
    """Refuse a DATABASE_URL paperboy cannot use before any driver is loaded, with what to do instead.

    A SQLite file in a folder that does not exist is refused rather than created: a typo in the path
    would otherwise start a second, empty database somewhere unexpected. (`get_engine` creates
    VAR_DIR, paperboy's own folder, so the default database works on a fresh machine.)
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(normalise_url(url))
    except (ArgumentError, ValueError):
        # The value itself is not repeated: a mistyped URL may still hold a password.
        raise SetupError(f"DATABASE_URL is not a database URL: use {DATABASE_URL_FORMS}") from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise SetupError(
            f"DATABASE_URL uses {parsed.drivername}://, which paperboy does not support: "
            f"use {DATABASE_URL_FORMS}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise SetupError(
                f"DATABASE_URL names the SQLite file {parsed.database}, but the folder {folder} does not "
                "exist: create it first (mkdir -p) or fix the path"
            )


# An execution option: on SQLite, the transaction takes the write lock when it begins (BEGIN IMMEDIATE).
# A plain BEGIN reads from a snapshot; if another process commits before this transaction's first write,
# that write is refused at once ("database is locked": a stale WAL snapshot is not retried by the busy
# timeout). With the lock taken first, the busy timeout waits for the other writer instead.
IMMEDIATE = "paperboy_sqlite_immediate"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    check_database_url(url)
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # pysqlite's own transaction handling breaks SAVEPOINT and delays BEGIN; let SQLAlchemy
            # emit BEGIN itself (the documented recipe), so SQLite transactions mean what they say.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            immediate = conn.get_execution_options().get(IMMEDIATE)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


_engines: dict[str, Engine] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the configured database (one per URL)."""
    settings = settings or get_settings()
    url = settings.resolved_database_url
    settings.var_dir.mkdir(parents=True, exist_ok=True)  # paperboy's own folder (default database, outbox)
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    On SQLite it begins with the write lock (IMMEDIATE): these are the CLI's commands and short
    read-then-write steps, which another process's commit must not refuse halfway.
    """
    engine = engine or get_engine()
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(**{IMMEDIATE: True})
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
