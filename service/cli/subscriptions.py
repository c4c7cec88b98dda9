"""`paperboy subscribe`, `paperboy subscriptions list`, `paperboy unsubscribe`."""

from __future__ import annotations

import json

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from service.cli.tables import fold_long_cells
from service.config import get_settings
from service.db import get_engine, session_scope
from service.models import Subscription
from service.subscription import (
    SubscriptionError,
    SubscriptionRequest,
    describe_schedule,
    list_subscriptions,
    pause,
    send_confirmation_email,
    subscribe,
    subscription_queries,
    unsubscribe,
    unsubscribe_all,
)

subscriptions_app = typer.Typer(help="Subscriptions: who gets which digest, when.", no_args_is_help=True)
console = Console()


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg="red", err=True)
    return typer.Exit(2)


def subscribe_command(
    email: str = typer.Argument(..., help="The subscriber's email address."),
    interest: list[str] = typer.Option(
        [], "--interest", "-i", help="An interest in plain words (repeatable)."
    ),
    query: str | None = typer.Option(
        None,
        "--query",
        "-q",
        help="Query language that filters the interests given with it, e.g. 'NOT robot*' "
        "(alone: an interest of its own).",
    ),
    cadence: str = typer.Option("daily", help="daily, weekdays or weekly."),
    weekday: str | None = typer.Option(None, help="Day of a weekly digest: mon ... sun."),
    time: str = typer.Option("08:00", "--time", help="Local send time, HH:MM."),
    timezone: str = typer.Option("UTC", help="IANA time zone, e.g. Europe/Paris."),
    max_papers: int = typer.Option(10, help="At most this many papers a digest."),
    min_score: float = typer.Option(0.0, help="Leave out papers scoring below this."),
    confirm: bool = typer.Option(
        False,
        "--confirm",
        help="Double opt-in: send a confirmation email; nothing is delivered until followed.",
    ),
) -> None:
    """Subscribe an address to a digest of its interests (active at once unless --confirm)."""
    settings = get_settings()
    if confirm:
        from service.channels.email import check_email_settings

        check_email_settings(settings)  # the confirmation email must be sendable before we store anything
    request = SubscriptionRequest(
        email=email,
        interests=interest,
        query=query,
        cadence=cadence,
        weekday=weekday,
        send_time=time,
        timezone=timezone,
        max_papers=max_papers,
        min_score=min_score,
        verified=not confirm,
    )
    try:
        with session_scope(get_engine(settings)) as session:
            result = subscribe(session, request)
            subscription = result.subscription
            subscriber = subscription.subscriber
            assert subscriber is not None
            line = (
                f"subscription {subscription.id}{'' if result.created else ' updated'}: {subscriber.email}, "
                f"{_interests_label(subscription)}, {describe_schedule(subscription)} ({subscription.status})"
            )
            if confirm:
                send_confirmation_email(subscriber, [subscription], settings=settings)
    except SubscriptionError as exc:
        raise _fail(exc) from exc
    typer.echo(line)
    if confirm:
        typer.echo(f"confirmation email sent to {subscriber.email}")


def _interests_text(names: list[str], queries: dict[str, str]) -> str:
    """`reinforcement learning [NOT robot*]`: each interest with the query that filters it."""
    return ", ".join(f"{n} [{queries[n]}]" if queries.get(n, n) != n else n for n in names)


def _interests_label(subscription: Subscription) -> str:
    names = list(subscription.interests or []) or [i.name for i in subscription.profile.interests]
    return _interests_text(names, subscription_queries(subscription))


@subscriptions_app.command("list")
def list_command(
    email: str | None = typer.Option(None, help="Only this address's subscriptions."),
    all_: bool = typer.Option(False, "--all", help="Include unsubscribed ones."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Subscriptions with their schedule, status and last digest."""
    try:
        with session_scope(get_engine()) as session:
            rows = [
                {
                    "id": s.id,
                    "email": s.subscriber.email if s.subscriber else None,
                    "channel": s.channel,
                    "address": s.address,
                    "interests": list(s.interests or []) or [i.name for i in s.profile.interests],
                    "queries": subscription_queries(s),
                    "schedule": describe_schedule(s),
                    "max_papers": s.max_papers,
                    "status": "paused" if s.paused and s.status == "active" else s.status,
                    "needs_attention": s.needs_attention,
                    "last_sent_at": s.last_sent_at.isoformat() if s.last_sent_at else None,
                }
                for s in list_subscriptions(session, email=email, include_unsubscribed=all_)
            ]
    except SubscriptionError as exc:
        raise _fail(exc) from exc
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    # No vertical rules and a narrow "last sent" (its date and time on two lines): at 80 columns the
    # interests keep whole words.
    table = Table(title="subscriptions", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for column in ("id", "channel", "address", "interests", "schedule", "status", "last sent"):
        table.add_column(column, max_width=10 if column == "last sent" else None)
    for row in rows:
        status = str(row["status"]) + (" (needs attention)" if row["needs_attention"] else "")
        last = str(row["last_sent_at"] or "never")[:16]
        interests = _interests_text(row["interests"], row["queries"])  # type: ignore[arg-type]
        table.add_row(
            str(row["id"]),
            str(row["channel"]),
            str(row["address"]),
            interests,
            str(row["schedule"]),
            status,
            last,
        )
    console.print(fold_long_cells(table))


def unsubscribe_command(
    subscription: int | None = typer.Argument(None, help="The subscription id (see `subscriptions list`)."),
    email: str | None = typer.Option(None, help="End every subscription of this address instead."),
) -> None:
    """End a subscription (or all of an address's); its history stays."""
    if (subscription is None) == (email is None):
        raise _fail(ValueError("give a SUBSCRIPTION id or --email, not both"))
    try:
        with session_scope(get_engine()) as session:
            if subscription is not None:
                ended = [unsubscribe(session, subscription)]
            else:
                ended = unsubscribe_all(session, email or "")
            ids = [s.id for s in ended]
    except SubscriptionError as exc:
        raise _fail(exc) from exc
    if not ids:
        typer.echo(f"no active subscription for {email}")
        return
    typer.echo("unsubscribed: " + ", ".join(str(i) for i in ids))


@subscriptions_app.command("pause")
def pause_command(subscription: int = typer.Argument(..., help="The subscription id.")) -> None:
    """Stop sending a subscription's digests until it is resumed."""
    _set_paused(subscription, True)


@subscriptions_app.command("resume")
def resume_command(subscription: int = typer.Argument(..., help="The subscription id.")) -> None:
    """Send a paused subscription's digests again (and clear a noted channel error)."""
    _set_paused(subscription, False)


def _set_paused(subscription: int, paused: bool) -> None:
    try:
        with session_scope(get_engine()) as session:
            pause(session, subscription, paused)
    except SubscriptionError as exc:
        raise _fail(exc) from exc
    typer.echo(f"subscription {subscription} {'paused' if paused else 'resumed'}")


# `subscriptions import` and `subscriptions export` live in their own module.
from service.cli.bulk import register as _register_bulk  # noqa: E402

_register_bulk(subscriptions_app)
