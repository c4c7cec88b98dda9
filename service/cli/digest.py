"""`paperboy digest preview|send SUBSCRIPTION`: one subscription's digest, now.

Exit codes of `send`: 0 sent (or nothing new: the period is done), 1 failed for good, 2 bad input,
3 skipped (already delivered, claimed, paused, unconfirmed...), 75 transient failure (retried later).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings, get_settings
from service.db import get_engine, session_scope
from service.delivery import deliver, describe, not_deliverable
from service.delivery.schedule import Schedule, ScheduleError, period_at, slot_of_period
from service.digest.compose import compose_digest
from service.digest.render import render_digest_email
from service.models import Delivery, Subscription

digest_app = typer.Typer(help="Digests: preview one, or send one now.", no_args_is_help=True)
EXIT = {"sent": 0, "empty": 0, "failed": 1, "skipped": 3, "retry": 75}


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def _subscription(session: Session, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise _fail(f"subscription {subscription_id} does not exist (see `paperboy subscriptions list`)")
    return sub


def _period(sub: Subscription, period: str | None, now: dt.datetime) -> str:
    """The period asked for (checked against the schedule), else the one it has most recently reached."""
    if period is None:
        return period_at(Schedule.of(sub), now)
    try:
        return slot_of_period(Schedule.of(sub), period, now).period
    except ScheduleError as exc:
        raise _fail(f"--period: {exc}") from exc


def _transport(settings: Settings) -> str:
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value().strip():
        from service.channels.smtp import parse_smtp_url

        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        return f"{target.scheme}://{target.host}:{target.port}"  # never the credentials
    return f"the outbox {settings.resolved_outbox_dir}"


@digest_app.command("preview")
def preview_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    fmt: str = typer.Option("html", "--format", "-f", help="html or text."),
    period: str | None = typer.Option(None, help="Period key (default: the current one)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Render the digest this subscription would get now, without recording or sending anything."""
    if fmt not in ("html", "text"):
        raise _fail(f"--format must be html or text, not {fmt!r}")
    settings = get_settings()
    now = dt.datetime.now(dt.UTC)
    with session_scope(get_engine(settings)) as session:
        sub = _subscription(session, subscription)
        digest = compose_digest(session, sub, _period(sub, period, now), now=now, settings=settings)
        rendered = render_digest_email(digest, recipient=sub.address)
    body = rendered.html if fmt == "html" else f"Subject: {rendered.subject}\n\n{rendered.text}"
    if output is not None:
        output.write_text(body, encoding="utf-8")
        typer.echo(f"{len(digest.items)} papers; written to {output}")
    else:
        typer.echo(body, nl=False)


@digest_app.command("send")
def send_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    period: str | None = typer.Option(None, help="Period key (default: the current one)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Compose and render only: nothing recorded or sent."
    ),
) -> None:
    """Deliver this subscription's digest for a period now, exactly once."""
    from service.channels.email import check_email_settings

    settings = get_settings()
    check_email_settings(settings)  # a bad SMTP_URL must stop us before the period is claimed
    engine = get_engine(settings)
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        sub = _subscription(session, subscription)
        key = _period(sub, period, now)
        if dry_run:
            _dry_run(session, sub, key, now, settings)
            return
    outcome = deliver(
        engine,
        subscription,
        key,
        now=now,
        settings=settings,
        instance=f"cli:{socket.gethostname()}:{os.getpid()}",
    )
    detail = {
        "sent": f"{outcome.papers} papers sent ({outcome.message_id}) via {_transport(settings)}",
        "empty": "no new papers: nothing sent, the period is done",
        "retry": f"not sent, will retry at {outcome.next_attempt_at:%Y-%m-%d %H:%M} UTC: {outcome.error}"
        if outcome.next_attempt_at
        else "",
        "failed": f"failed: {outcome.error}",
        "skipped": f"skipped: {outcome.error}",
    }[outcome.status]
    typer.echo(f"subscription {subscription}, period {key}: {detail}")
    raise typer.Exit(EXIT[outcome.status])


def _dry_run(session: Session, sub: Subscription, period: str, now: dt.datetime, settings: Settings) -> None:
    existing = session.scalar(
        select(Delivery).where(Delivery.subscription_id == sub.id, Delivery.period == period)
    )
    blocked = not_deliverable(sub) or (
        describe(existing) if existing and existing.status != "retry" else None
    )
    digest = compose_digest(session, sub, period, now=now, settings=settings)
    rendered = render_digest_email(digest, recipient=sub.address)
    typer.echo(f"subscription {sub.id}, period {period} (dry run: nothing recorded or sent)")
    if blocked:
        typer.echo(f"would skip: {blocked}")
    elif not digest.items and not settings.send_empty_digests:
        typer.echo("would record an empty period: no new papers")
    else:
        typer.echo(f"would send to {sub.address} via {_transport(settings)}")
    typer.echo(f"subject: {rendered.subject}")
    for rank, item in enumerate(digest.items, start=1):
        typer.echo(f"  {rank:2d}. [{item.score:.3f}] {' '.join(item.title.split())}")
