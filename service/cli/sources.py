"""`paperboy sources add/list/remove`: the HTTP feeds the ingest job polls."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from service.config import Settings, get_settings
from service.db import get_engine, session_scope
from service.ingest.records import FORMATS
from service.models import Source
from service.sources import register_configured_sources

sources_app = typer.Typer(help="HTTP sources polled for new dumps.", no_args_is_help=True)


def _engine() -> tuple[Engine, Settings]:
    from service.cli.run import require_schema

    settings = get_settings()
    engine = get_engine(settings)
    require_schema(engine)
    return engine, settings


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url: {url!r} is not an http(s) URL with a host")
    return url.strip()


@sources_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="A short name, e.g. hf-daily."),
    url: str = typer.Argument(..., help="The feed URL (http or https)."),
    fmt: str | None = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)}; default: detect."),
) -> None:
    """Add a source; the next ingest pass polls it."""
    name = name.strip()
    if not name or len(name) > 100:
        raise _fail("name: give 1-100 characters")
    try:
        url = check_url(url)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if fmt is not None and fmt not in FORMATS:
        raise _fail(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    engine, _ = _engine()
    try:
        with session_scope(engine) as session:
            session.add(Source(name=name, url=url, format=fmt))
    except IntegrityError as exc:
        raise _fail(f"name: a source named {name!r} already exists (remove it first)") from exc
    typer.echo(f"added source {name}: {url}" + (f" (format {fmt})" if fmt else ""))


@sources_app.command("list")
def list_command() -> None:
    """Every source with the outcome of its last poll."""
    engine, settings = _engine()
    print_sources(engine, settings)


@sources_app.command("remove")
def remove_command(name: str = typer.Argument(..., help="The source's name.")) -> None:
    """Stop polling a source (papers it brought stay)."""
    engine, settings = _engine()
    if name in settings.http_sources:
        raise _fail(f"{name!r} comes from HTTP_SOURCES in the settings; remove it there")
    with session_scope(engine) as session:
        src = session.scalar(select(Source).where(Source.name == name))
        if src is None:
            raise _fail(f"no source named {name!r}")
        session.delete(src)
    typer.echo(f"removed source {name}")


def print_sources(engine: Engine, settings: Settings) -> None:
    register_configured_sources(engine, settings)
    with session_scope(engine) as session:
        rows = session.scalars(select(Source).order_by(Source.name)).all()
        if not rows:
            typer.echo("no sources (add one with `paperboy sources add NAME URL`)")
        for src in rows:
            origin = " [settings]" if src.name in settings.http_sources else ""
            state = "enabled" if src.enabled else "disabled"
            polled = (
                src.last_polled_at.strftime("%Y-%m-%d %H:%M UTC") if src.last_polled_at else "never polled"
            )
            typer.echo(f"{src.name}{origin}: {src.url} ({src.format or 'detect'}, {state})")
            typer.echo(f"  last poll: {polled} {src.last_status or ''}".rstrip())
            if src.last_error:
                typer.echo(f"  last error: {src.last_error}")
