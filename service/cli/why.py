"""`paperboy why EMAIL_OR_SUBSCRIPTION [--date D]`: what happened to a digest that day, in plain words."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select

from service.db import get_engine, session_scope
from service.models import Subscriber, Subscription
from service.subscription import SubscriptionError, describe_schedule, normalise_email
from service.why import explain_day


def why_command(
    target: str = typer.Argument(..., help="A subscription id, or an email address (all its subscriptions)."),
    date: str | None = typer.Option(
        None, "--date", help="YYYY-MM-DD in the subscription's time zone (default: today)."
    ),
) -> None:
    """Why a digest was (or was not) sent on a day: each dispatch pass's note, in plain words."""
    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError as exc:
        typer.secho(f"error: --date: {date!r} is not YYYY-MM-DD", fg="red", err=True)
        raise typer.Exit(2) from exc
    with session_scope(get_engine()) as session:
        if target.isdigit():
            found = [s for s in [session.get(Subscription, int(target))] if s is not None]
        else:
            try:
                email = normalise_email(target)
            except SubscriptionError as exc:
                typer.secho(f"error: {exc}", fg="red", err=True)
                raise typer.Exit(2) from exc
            found = list(
                session.scalars(
                    select(Subscription)
                    .join(Subscriber)
                    .where(Subscriber.email == email)
                    .order_by(Subscription.id)
                )
            )
        if not found:
            typer.secho(f"error: no subscription matches {target!r}", fg="red", err=True)
            raise typer.Exit(2)
        for sub in found:
            local_day = day or dt.datetime.now(ZoneInfo(sub.timezone)).date()
            typer.echo(f"subscription {sub.id} ({sub.address}, {describe_schedule(sub)}) on {local_day}:")
            for line in explain_day(session, sub, local_day):
                typer.echo(f"  {line}")
