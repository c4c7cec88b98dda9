"""`paperboy db ...`: schema management."""

from __future__ import annotations

import typer

from service.config import get_settings
from service.db import get_engine
from service.migrations import upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision to migrate to.")) -> None:
    """Create or migrate the schema of DATABASE_URL."""
    settings = get_settings()
    get_engine(settings)  # refuses a DATABASE_URL it cannot use; creates the default var/ folder
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {_redact(settings.resolved_database_url)} is at revision {revision}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
