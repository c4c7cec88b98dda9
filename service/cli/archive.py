"""`paperboy archive SUBSCRIPTION [--search Q]`: a subscription's past digests, or the papers it was
sent that match a search, with the links a reader would use."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from service.archive import PAGE_SIZE, past_digests, search_sent
from service.config import get_settings
from service.db import get_engine, session_scope
from service.links import archive_url, digest_url
from service.models import Subscription

console = Console()


def archive_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    search: str | None = typer.Option(None, "--search", "-s", help="Words the papers must all hold."),
    page: int = typer.Option(1, min=1, help="Page number, newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Past digests of a subscription (newest first), or a search over the papers it was sent."""
    settings = get_settings()
    offset = (page - 1) * PAGE_SIZE
    with session_scope(get_engine()) as session:
        sub = session.get(Subscription, subscription)
        if sub is None:
            typer.secho(f"error: subscription {subscription} does not exist", fg="red", err=True)
            raise typer.Exit(2)
        if search is not None and search.strip():
            total, papers = search_sent(session, sub.id, search, limit=PAGE_SIZE, offset=offset)
            rows = [{**vars(p), "sent_at": p.sent_at.isoformat() if p.sent_at else None} for p in papers]
            columns = ("period", "paper_id", "title", "why")
            title = f"{total} sent papers matching {search.strip()!r}"
        else:
            total, digests = past_digests(session, sub.id, limit=PAGE_SIZE, offset=offset)
            rows = [
                {
                    **vars(d),
                    "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                    "url": digest_url(sub.subscriber_id, sub.id, d.period, settings),
                }
                for d in digests
            ]
            columns = ("period", "sent_at", "paper_count", "url")
            title = f"{total} past digests (archive: {archive_url(sub.subscriber_id, sub.id, settings)})"
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"{title} · page {page}")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)
