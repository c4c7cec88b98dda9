"""`paperboy profile ...`: create, edit, show, export and import interest profiles."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from service.db import get_engine, session_scope
from service.models import Profile
from service.profile import (
    InterestSpec,
    ProfileError,
    ProfileSpec,
    apply_spec,
    dump_spec,
    get_profile,
    load_specs,
    record_feedback,
    resolve_paper,
    to_spec,
)

profile_app = typer.Typer(help="Interest profiles.", no_args_is_help=True)
console = Console()
KEYWORDS_HELP = "Weighted keywords, e.g. '\"sparse attention\"^2, kv cache'."
QUERY_HELP = 'Query language: AND, OR, NOT, "phrases", (), quantiz*, title:/abstract:/author:.'


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg="red", err=True)
    return typer.Exit(2)


@profile_app.command("list")
def list_profiles() -> None:
    """Every profile with its interests."""
    with session_scope(get_engine()) as session:
        table = Table(title="profiles")
        for column in ("id", "name", "subscriber", "interests", "feedback"):
            table.add_column(column)
        for profile in session.scalars(select(Profile).order_by(Profile.id)):
            table.add_row(
                str(profile.id),
                profile.name,
                profile.subscriber.email if profile.subscriber else "",
                ", ".join(i.name for i in profile.interests),
                str(len(profile.feedback)),
            )
        console.print(table)


@profile_app.command("set")
def set_interest(
    profile: str = typer.Argument(..., help="Profile name (created if new)."),
    interest: str = typer.Option("default", "--interest", "-i", help="Interest name (created if new)."),
    keywords: str | None = typer.Option(
        None, "--keywords", "-k", help="e.g. '\"sparse attention\"^2, kv cache'"
    ),
    query: str | None = typer.Option(
        None, "--query", "-q", help='Query language: AND OR NOT "phrase" quantiz* title:'
    ),
    exclude: str | None = typer.Option(None, "--exclude", "-x", help="Comma-separated excluded terms."),
    seed: list[str] = typer.Option([], "--seed", "-s", help="Seed paper: id, arXiv id or exact title."),
    threshold: float | None = typer.Option(None, help="Minimum score for this interest."),
    top_k: int | None = typer.Option(None, help="At most this many papers from this interest."),
    subscriber: str | None = typer.Option(None, help="Owner's email address."),
) -> None:
    """Create or edit one interest of a profile; options not given keep their value."""
    try:
        with session_scope(get_engine()) as session:
            existing = session.scalar(select(Profile).where(Profile.name == profile))
            spec = to_spec(session, existing) if existing else ProfileSpec(name=profile)
            if subscriber is not None:
                spec.subscriber = subscriber
            current = next((i for i in spec.interests if i.name == interest), None)
            if current is None:
                current = InterestSpec(name=interest)
                spec.interests.append(current)
            if keywords is not None:
                current.keywords = keywords
            if query is not None:
                current.query = query or None
            if exclude is not None:
                current.exclude = [e.strip() for e in exclude.split(",") if e.strip()]
            current.seeds = list(dict.fromkeys([*current.seeds, *seed]))
            if threshold is not None:
                current.threshold = threshold
            if top_k is not None:
                current.top_k = top_k
            apply_spec(session, spec)
    except ProfileError as exc:
        raise _fail(exc) from exc
    typer.echo(f"profile {profile!r}: interest {interest!r} saved")


@profile_app.command("remove-interest")
def remove_interest(profile: str, interest: str) -> None:
    """Delete one interest from a profile."""
    try:
        with session_scope(get_engine()) as session:
            spec = to_spec(session, get_profile(session, profile))
            kept = [i for i in spec.interests if i.name != interest]
            if len(kept) == len(spec.interests):
                raise ProfileError(f"profile {profile!r} has no interest {interest!r}")
            spec.interests = kept
            apply_spec(session, spec)
    except ProfileError as exc:
        raise _fail(exc) from exc
    typer.echo(f"profile {profile!r}: interest {interest!r} removed")


@profile_app.command("delete")
def delete_profile(profile: str) -> None:
    """Delete a profile, its interests and feedback."""
    try:
        with session_scope(get_engine()) as session:
            session.delete(get_profile(session, profile))
    except ProfileError as exc:
        raise _fail(exc) from exc
    typer.echo(f"profile {profile!r} deleted")


@profile_app.command("show")
def show_profile(
    profile: str, fmt: str = typer.Option("yaml", "--format", "-f", help="yaml or json")
) -> None:
    """Print a profile in its import/export format."""
    export_profile(profile, fmt=fmt, out=None)


@profile_app.command("export")
def export_profile(
    profile: str = typer.Argument(..., help="Profile name or id."),
    fmt: str = typer.Option("yaml", "--format", "-f", help="yaml or json"),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
) -> None:
    """Write a profile as YAML or JSON, for people who keep profiles in git."""
    if fmt not in {"yaml", "json"}:
        raise _fail(ProfileError(f"--format must be yaml or json, not {fmt!r}"))
    try:
        with session_scope(get_engine()) as session:
            text = dump_spec(to_spec(session, get_profile(session, profile)), fmt)
    except ProfileError as exc:
        raise _fail(exc) from exc
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@profile_app.command("import")
def import_profiles(path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Create or replace profiles from a YAML or JSON file (all or nothing)."""
    try:
        specs = load_specs(path.read_text(encoding="utf-8"), str(path))
        with session_scope(get_engine()) as session:
            for spec in specs:
                apply_spec(session, spec)
    except (ProfileError, UnicodeDecodeError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"imported {len(specs)} profile(s) from {path}")


@profile_app.command("feedback")
def feedback(
    profile: str,
    paper: str = typer.Argument(..., help="Paper id, arXiv id or exact title."),
    relevant: bool = typer.Option(True, "--relevant/--not-relevant"),
) -> None:
    """Mark a paper relevant or not relevant for a profile; it shifts later rankings."""
    try:
        with session_scope(get_engine()) as session:
            stored = get_profile(session, profile)
            record_feedback(session, stored, resolve_paper(session, paper).id, relevant, "cli")
    except ProfileError as exc:
        raise _fail(exc) from exc
    typer.echo(f"profile {profile!r}: paper {paper} marked {'relevant' if relevant else 'not relevant'}")
