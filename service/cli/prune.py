"""`paperboy prune`: move delivered papers that can no longer be candidates out of the hot table."""

from __future__ import annotations

import typer

from service.clock import SystemClock
from service.db import get_engine, session_scope
from service.delivery.retention import BATCH, prune


def prune_command(
    batch: int = typer.Option(BATCH, "--batch", min=1, help="Rows moved per transaction."),
) -> None:
    """Move delivered papers too old to be candidates to the archive table (run daily)."""
    with session_scope(get_engine()) as session:
        result = prune(session, now=SystemClock().now(), batch=batch)
    typer.echo(
        f"moved {result.moved} delivered paper(s) first seen at or before "
        f"{result.horizon:%Y-%m-%d %H:%M} UTC to archived_papers"
    )
