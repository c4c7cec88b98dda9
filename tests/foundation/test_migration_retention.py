"""Migration scaletables_1 on a database with deliveries in it: every delivery_papers row gets its
paper's first_seen_at, on SQLite and PostgreSQL; `paperboy prune` then moves the old ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from service.db import make_engine, session_scope
from service.migrations import upgrade
from service.models import ArchivedPaper, Delivery, DeliveryPaper
from tests.cli import run_cli
from tests.conftest import _drop_postgres_database, _new_database_url
from tests.digest.helpers import add_paper, add_subscription

OLD = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
# A delivery_papers row as security_1 stored it: no paper_seen_at.
INSERT_OLD_ROW = (
    "INSERT INTO delivery_papers (delivery_id, subscription_id, paper_id, rank, score, reason)"
    " VALUES (:d, :s, :p, :r, 1.0, :reason)"
)
RECENT = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_backfills_paper_seen_at(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _new_database_url(kind, tmp_path, "retention_upgrade")
    engine = make_engine(url)
    try:
        upgrade(url, "security_1")
        with session_scope(engine) as session:
            sub_id = add_subscription(session, "ada@example.org")
            old = add_paper(session, "arxiv:2601.00001", "Old paper", seen=OLD)
            new = add_paper(session, "arxiv:2611.00002", "New paper", seen=RECENT)
            delivery = Delivery(subscription_id=sub_id, period="2026-01-06", status="sent", created_at=OLD)
            session.add(delivery)
            session.flush()
            ids = (delivery.id, sub_id, old.id, new.id)
        with engine.begin() as conn:  # the table as security_1 had it: no paper_seen_at
            for rank, paper_id in enumerate(ids[2:], start=1):
                conn.execute(
                    text(INSERT_OLD_ROW),
                    {"d": ids[0], "s": ids[1], "p": paper_id, "r": rank, "reason": '{"why": "x"}'},
                )
        upgrade(url)
        with session_scope(engine) as session:
            seen = {row.paper_id: row.paper_seen_at for row in session.query(DeliveryPaper)}
        assert seen == {ids[2]: OLD, ids[3]: RECENT}
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("VAR_DIR", str(tmp_path))
        _prune_by_command(engine, ids[2])
    finally:
        engine.dispose()
        _drop_postgres_database(url)


def _prune_by_command(engine: Engine, old_paper_id: int) -> None:
    from service.config import get_settings

    get_settings.cache_clear()
    try:
        code, out = run_cli("prune")
    finally:
        get_settings.cache_clear()
    assert code == 0, out
    assert "moved 1 delivered paper(s)" in out
    with session_scope(engine) as session:
        assert [a.paper_id for a in session.query(ArchivedPaper)] == [old_paper_id]
        assert session.query(DeliveryPaper).count() == 1
