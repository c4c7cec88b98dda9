"""SQLite: a command that reads, then writes, is not refused when another process commits in between."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, text

from service.db import make_engine, session_scope


def engines(tmp_path: Path) -> tuple[Engine, Engine]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = make_engine(url), make_engine(url)  # two processes' engines on one file
    with first.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (body TEXT)")
    return first, second


def test_a_read_then_write_waits_for_the_other_writer_instead_of_failing(tmp_path: Path) -> None:
    command, scheduler = engines(tmp_path)
    other_done = threading.Event()
    errors: list[BaseException] = []

    def other_process_writes() -> None:
        try:
            with scheduler.begin() as conn:
                conn.execute(text("INSERT INTO notes VALUES ('scheduler')"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            other_done.set()

    with session_scope(command) as session:
        assert session.execute(text("SELECT count(*) FROM notes")).scalar_one() == 0  # a read first
        writer = threading.Thread(target=other_process_writes)
        writer.start()
        # Without the write lock taken at BEGIN, the other write commits now and the INSERT below is
        # refused at once ("database is locked", a stale snapshot). With it, the other writer waits.
        other_done.wait(timeout=1.0)
        session.execute(text("INSERT INTO notes VALUES ('command')"))
    writer.join(timeout=30)
    assert not errors and other_done.is_set()
    with command.connect() as conn:
        bodies = sorted(conn.execute(text("SELECT body FROM notes")).scalars())
    assert bodies == ["command", "scheduler"]
    command.dispose()
    scheduler.dispose()
