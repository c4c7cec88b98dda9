"""The models and the migrations describe the same schema, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from service.config import Settings
from service.migrations import current_head, include_object
from service.models import Base, Paper


def test_models_and_migrations_agree(engine: Engine) -> None:
    """Autogenerate finds no difference between the migrated database and the models."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_migrations_create_every_model_table(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_paper_columns_present(engine: Engine) -> None:
    columns = {c["name"] for c in inspect(engine).get_columns(Paper.__tablename__)}
    assert {"key", "arxiv_id", "title", "abstract", "upvotes", "first_seen_at"} <= columns


def test_default_database_is_sqlite_in_var(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, var_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.as_posix()}/paperboy.db"
    assert current_head() is not None
