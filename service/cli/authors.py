"""`paperboy authors preview|follow|unfollow|list`: follow people as an interest of a subscription."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from service.authors import AuthorError, follow_for, followed_authors, preview, unfollow
from service.db import get_engine, session_scope
from service.models import Subscription

authors_app = typer.Typer(
    help="Follow authors: everything by a person, whatever its words.", no_args_is_help=True
)
console = Console()


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def _subscription(session: Session, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise _fail(f"subscription {subscription_id} does not exist (see `paperboy subscriptions list`)")
    return sub


@authors_app.command("preview")
def preview_command(
    name: str = typer.Argument(..., help='An author name: "Yann LeCun", "LeCun, Y.", ...'),
    limit: int = typer.Option(20, min=1, max=500, help="How many papers to show."),
) -> None:
    """The stored papers a name matches, newest first, and the spellings found (namesakes)."""
    with session_scope(get_engine()) as session:
        try:
            found = preview(session, name, limit=limit)
        except AuthorError as exc:
            raise _fail(str(exc)) from exc
        table = Table(title=f"{found.total} stored papers by {found.name!r}")
        for column in ("id", "published", "as written", "title"):
            table.add_column(column, overflow="fold")
        for paper, spelling in found.papers:
            published = paper.published_on.isoformat() if paper.published_on else ""
            table.add_row(str(paper.id), published, spelling, " ".join(paper.title.split()))
    console.print(table)
    if len(found.spellings) > 1:
        typer.echo("written as: " + ", ".join(f"{s} ({n})" for s, n in found.spellings))


@authors_app.command("follow")
def follow_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    names: list[str] = typer.Argument(..., help="Author names."),
) -> None:
    """Follow authors: their new papers come in this subscription's digests whatever their words."""
    with session_scope(get_engine()) as session:
        sub = _subscription(session, subscription)
        try:
            added = follow_for(session, sub, names)
        except AuthorError as exc:
            raise _fail(str(exc)) from exc
    for name in names:
        typer.echo(f"{'following' if name in added else 'already following'}: {name}")


@authors_app.command("unfollow")
def unfollow_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    name: str = typer.Argument(..., help="An author name (any spelling of a followed one)."),
) -> None:
    with session_scope(get_engine()) as session:
        sub = _subscription(session, subscription)
        try:
            removed = unfollow(session, sub.profile, name)
        except AuthorError as exc:
            raise _fail(str(exc)) from exc
    if not removed:
        raise _fail(f"subscription {subscription} does not follow {name!r}")
    typer.echo("no longer following: " + ", ".join(removed))


@authors_app.command("list")
def list_command(subscription: int = typer.Argument(..., help="Subscription id.")) -> None:
    with session_scope(get_engine()) as session:
        for name in followed_authors(_subscription(session, subscription).profile):
            typer.echo(name)
