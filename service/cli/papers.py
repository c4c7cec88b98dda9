"""`paperboy papers list|show|search` for operators, and `paperboy export`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from service.cli.tables import fold_long_cells
from service.db import get_engine, session_scope
from service.ingest.export import export_papers
from service.ingest.normalize import normalize_arxiv_id
from service.models import Paper

papers_app = typer.Typer(help="Look at stored papers.", no_args_is_help=True)
console = Console()


def _listing(session: Session, query: Select[tuple[Paper]], title: str) -> None:
    table = Table(title=title)
    for column in ("id", "published", "upvotes", "arXiv", "title"):
        table.add_column(column, overflow="fold" if column == "title" else "ellipsis")
    count = 0
    for paper in session.scalars(query):
        count += 1
        table.add_row(
            str(paper.id),
            paper.published_on.isoformat() if paper.published_on else "",
            "" if paper.upvotes is None else str(paper.upvotes),
            paper.arxiv_id or "",
            paper.title,
        )
    console.print(fold_long_cells(table) if count else f"{title}: no papers")


@papers_app.command("list")
def list_papers(
    limit: int = typer.Option(20, min=1, help="How many papers, newest first."),
    source: str | None = typer.Option(None, help="Only papers first seen in this source."),
) -> None:
    """The most recently ingested papers."""
    query = select(Paper).order_by(Paper.first_seen_at.desc(), Paper.id.desc()).limit(limit)
    if source:
        query = query.where(Paper.source == source)
    with session_scope(get_engine()) as session:
        total = session.scalar(select(func.count()).select_from(Paper)) or 0
        _listing(session, query, f"papers ({min(limit, total)} of {total})")


@papers_app.command("show")
def show_paper(
    paper: str = typer.Argument(..., help="Paper id, or an arXiv id such as 2401.01234v2."),
) -> None:
    """Everything stored about one paper."""
    with session_scope(get_engine()) as session:
        found: Paper | None = None
        if paper.isdigit():
            found = session.get(Paper, int(paper))
        if found is None and (arxiv_id := normalize_arxiv_id(paper)):
            found = session.scalar(select(Paper).where(Paper.arxiv_id == arxiv_id).limit(1))
        if found is None:
            console.print(f"[red]no paper {paper!r}[/red]")
            raise typer.Exit(1)
        table = Table(show_header=False, title=f"paper {found.id}")
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for name in (
            "title",
            "arxiv_id",
            "url",
            "code_url",
            "published_on",
            "upvotes",
            "author_count",
            "organization",
            "source",
            "first_seen_at",
            "key",
        ):
            value = getattr(found, name)
            table.add_row(name, "" if value is None else str(value))
        table.add_row("authors", ", ".join(found.authors))
        table.add_row("links", "\n".join(found.links))
        table.add_row("abstract", found.abstract)
        console.print(table)


@papers_app.command("search")
def search_papers(
    text: str = typer.Argument(..., help="Words that must all appear in the title or abstract."),
    limit: int = typer.Option(20, min=1),
) -> None:
    """Papers whose title or abstract contains every word (case-insensitive substring match)."""
    words = text.lower().split()
    if not words:
        console.print("[red]give at least one word[/red]")
        raise typer.Exit(2)
    conditions = [
        or_(
            func.lower(Paper.title).contains(word, autoescape=True),
            func.lower(Paper.abstract).contains(word, autoescape=True),
        )
        for word in words
    ]
    query = select(Paper).where(and_(*conditions)).order_by(Paper.id.desc()).limit(limit)
    with session_scope(get_engine()) as session:
        _listing(session, query, f"papers matching {text!r}")


def export_command(
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: standard output)."),
) -> None:
    """Write every stored paper as JSON Lines (`paperboy ingest` reads it back)."""
    with session_scope(get_engine()) as session:
        if out is None:
            count = export_papers(session, sys.stdout)
        else:
            # Write beside the target and rename, so a failed export never leaves half a file.
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as stream:
                    count = export_papers(session, stream)
                os.replace(tmp, out)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    if out is not None:
        Console(stderr=True).print(f"exported {count} papers to {out}")
