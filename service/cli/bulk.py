"""`paperboy subscriptions import FILE`, `export` (many at once) and `subscriptions reading`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from service.bulk import (
    FORMATS,
    BulkFormatError,
    detect_format,
    export_records,
    import_subscriptions,
    read_records,
    send_confirmations,
    write_records,
)
from service.config import get_settings
from service.db import get_engine, session_scope


def import_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSON Lines file."),
    fmt: str | None = typer.Option(None, "--format", help="csv or jsonl (default: from the file name)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; store nothing."),
    as_confirmed: bool = typer.Option(
        False,
        "--as-confirmed",
        help="The addresses opted in elsewhere: active at once (needs --consent-source).",
    ),
    consent_source: str | None = typer.Option(
        None,
        "--consent-source",
        help='Where they opted in, recorded per subscriber, e.g. "NeurIPS booth 2026".',
    ),
    send_email: bool = typer.Option(
        True,
        "--send-confirmations/--no-send-confirmations",
        help="Email new pending addresses their confirm link.",
    ),
) -> None:
    """Import subscriptions (idempotent: a second import of the same file changes nothing).

    Exit codes: 0 all rows fine, 1 some rows had errors (the others were imported), 2 unusable file."""
    settings = get_settings()
    try:
        fmt = detect_format(path.name, fmt)
        with (
            path.open(encoding="utf-8-sig", newline="") as stream,
            session_scope(get_engine(settings)) as session,
        ):
            report = import_subscriptions(
                session,
                read_records(stream, fmt),
                confirmed=as_confirmed,
                consent_source=consent_source,
                dry_run=dry_run,
            )
            if dry_run:
                session.rollback()
    except (BulkFormatError, UnicodeDecodeError) as exc:
        typer.secho(f"error: {path}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    for error in report.errors:
        typer.echo(f"{path}: {error}", err=True)
    if report.error_count > len(report.errors):
        typer.echo(f"... and {report.error_count - len(report.errors)} more errors", err=True)
    verb = "would import" if dry_run else "imported"
    typer.echo(
        f"{verb} {report.rows} rows: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.error_count} with errors"
    )
    if not dry_run and report.to_confirm:
        if send_email:
            with session_scope(get_engine(settings)) as session:
                sent, failures = send_confirmations(session, report.to_confirm, settings)
            for failure in failures:
                typer.echo(f"confirmation email failed: {failure}", err=True)
            typer.echo(f"{sent} confirmation emails sent; those addresses stay pending until confirmed")
        else:
            typer.echo(f"{len(report.to_confirm)} new addresses pending, no confirmation email sent")
    raise typer.Exit(1 if report.error_count else 0)


def export_command(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: standard output)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="csv or jsonl (default: from -o, else csv)."),
    all_: bool = typer.Option(False, "--all", help="Include unsubscribed ones."),
) -> None:
    """Export every email subscription in the import format."""
    try:
        fmt = detect_format(output.name, fmt) if output else (fmt or "csv")
        if fmt not in FORMATS:
            raise BulkFormatError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    except BulkFormatError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    with session_scope(get_engine()) as session:
        records = export_records(session, include_unsubscribed=all_)
        if output is None:
            count = write_records(records, fmt, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = write_records(records, fmt, out)
    typer.echo(f"{count} subscriptions exported", err=True)


def reading_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    tldr: bool | None = typer.Option(None, "--tldr/--no-tldr", help="A one-sentence TL;DR under each title."),
    trending: bool | None = typer.Option(
        None, "--trending/--no-trending", help="Popular matching papers first."
    ),
    best_of_week: bool | None = typer.Option(
        None, "--best-of-week/--no-best-of-week", help="Weekly only: the week's most upvoted matching papers."
    ),
) -> None:
    """Show or change how a subscription's digest reads."""
    from service.models import Subscription
    from service.reading import ReadingError, set_reading_options

    with session_scope(get_engine()) as session:
        sub = session.get(Subscription, subscription)
        if sub is None:
            typer.secho(f"error: subscription {subscription} does not exist", fg="red", err=True)
            raise typer.Exit(2)
        try:
            now = set_reading_options(session, sub, tldr=tldr, trending=trending, best_of_week=best_of_week)
        except ReadingError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from exc
    typer.echo(
        f"subscription {subscription}: " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in now.items())
    )


def register(subscriptions_app: typer.Typer) -> None:
    subscriptions_app.command("import")(import_command)
    subscriptions_app.command("export")(export_command)
    subscriptions_app.command("reading")(reading_command)
