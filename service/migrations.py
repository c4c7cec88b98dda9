"""Run Alembic from code: `paperboy db upgrade` and the test fixtures use this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent

# Tables other libraries own (APScheduler's job store creates its own).
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
# Declared in the models (the ORM's join, SQLite's cascade); on PostgreSQL a trigger does its work
# instead (alembic/versions/dbsink_1), so the two backends differ here on purpose.
SQLITE_ONLY_FOREIGN_KEYS = frozenset({"fk_delivery_papers_delivery_id_deliveries"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate compares only paperboy's own tables, and not the foreign keys SQLite alone has."""
    if type_ == "foreign_key_constraint" and name in SQLITE_ONLY_FOREIGN_KEYS:
        return False
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or migrate the schema of the database at `url`."""
    command.upgrade(alembic_config(url), revision)


def current_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
