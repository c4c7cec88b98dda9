"""`paperboy deliveries list|resolve`: what was delivered, and settling a delivery a crash left open."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from service.cli.tables import fold_long_cells
from service.db import get_engine, session_scope
from service.delivery.records import describe, resolve_stuck
from service.models import Delivery

deliveries_app = typer.Typer(help="Deliveries: one digest per subscription and period.", no_args_is_help=True)
console = Console()
STATUSES = ("claimed", "sent", "retry", "failed", "empty")


@deliveries_app.command("list")
def list_deliveries(
    status: str | None = typer.Option(None, help=f"Only this status: {', '.join(STATUSES)}."),
    subscription: int | None = typer.Option(None, help="Only this subscription."),
    limit: int = typer.Option(30, min=1, help="How many, newest first."),
) -> None:
    """Recent deliveries and what became of them."""
    if status is not None and status not in STATUSES:
        typer.secho(f"error: --status must be one of {', '.join(STATUSES)}, not {status!r}", err=True)
        raise typer.Exit(2)
    query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
    if status:
        query = query.where(Delivery.status == status)
    if subscription is not None:
        query = query.where(Delivery.subscription_id == subscription)
    table = Table(title="deliveries")
    for column in ("id", "subscription", "period", "status", "attempts", "papers", "detail"):
        table.add_column(column, overflow="fold")
    with session_scope(get_engine()) as session:
        for d in session.scalars(query):
            table.add_row(
                str(d.id), str(d.subscription_id), d.period, d.status, str(d.attempts),
                str(len(d.papers)), describe(d),
            )  # fmt: skip
    console.print(fold_long_cells(table))


@deliveries_app.command("resolve")
def resolve(
    delivery: int = typer.Argument(..., help="A delivery left 'claimed' (see `paperboy status`)."),
    sent: bool = typer.Option(
        ..., "--sent/--resend", help="--sent: it did go out. --resend: it did not; send it again now."
    ),
) -> None:
    """Settle a delivery that a crash left between sending and recording."""
    try:
        with session_scope(get_engine()) as session:
            resolved = resolve_stuck(session, delivery, was_sent=sent, now=dt.datetime.now(dt.UTC))
            verdict = resolved.status
    except LookupError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"delivery {delivery}: "
        + ("recorded as sent" if verdict == "sent" else "will be sent again on the next dispatch pass")
    )
