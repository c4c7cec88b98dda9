"""`paperboy slack subscribe` and `paperboy slack list`: Slack channels' digests, for the operator.

Tokens and webhook URLs are asked for at a hidden prompt (or read from standard input), never taken
as arguments: arguments end up in shell history and in `ps` output.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service.channels import slack_subscriptions as channel_subs
from service.config import get_settings
from service.db import get_engine, session_scope
from service.models import Subscription
from service.slack_app.manifest import ManifestError, manifest
from service.subscription import SubscriptionError, describe_schedule

slack_app = typer.Typer(help="Slack: digests posted to channels.", no_args_is_help=True)


@slack_app.command("subscribe")
def subscribe_command(
    channel: str = typer.Argument(..., help="Channel id (C0123ABCD), or a name for an incoming webhook."),
    interest: str = typer.Option(..., "--interest", "-i", help="What the channel reads about, plain words."),
    webhook: bool = typer.Option(
        False, "--webhook", help="Post through an incoming webhook (its URL is asked for, hidden)."
    ),
    own_token: bool = typer.Option(
        False,
        "--own-token",
        help="Use a bot token of its own instead of SLACK_BOT_TOKEN (asked for, hidden).",
    ),
    cadence: str = typer.Option("daily", help="daily, weekdays or weekly."),
    weekday: str | None = typer.Option(None, help="Day of a weekly digest: mon ... sun."),
    time: str = typer.Option("08:00", "--time", help="Local send time, HH:MM."),
    timezone: str = typer.Option("UTC", help="IANA time zone, e.g. Europe/Paris."),
    max_papers: int = typer.Option(10, help="At most this many papers a digest."),
) -> None:
    """Subscribe a Slack channel to a digest on one interest (active at once)."""
    settings = get_settings()
    if webhook and own_token:
        raise _fail(SubscriptionError("choose --webhook or --own-token, not both"))
    webhook_url = typer.prompt("Incoming webhook URL", hide_input=True) if webhook else None
    token = typer.prompt("Bot token", hide_input=True) if own_token else None
    if not webhook and not own_token and settings.slack_bot_token is None:
        typer.secho("warning: SLACK_BOT_TOKEN is not set; digests wait until it is", fg="yellow", err=True)
    request = channel_subs.SlackSubscribe(
        channel_id=channel,
        interest=interest,
        webhook_url=webhook_url.strip() if webhook_url else None,
        bot_token=token.strip() if token else None,
        cadence=cadence,
        weekday=weekday,
        send_time=time,
        timezone=timezone,
        max_papers=max_papers,
    )
    try:
        with session_scope(get_engine(settings)) as session:
            sub, created = channel_subs.subscribe(session, request, settings)
            line = f"subscription {sub.id}: slack {sub.address}, {interest}, {describe_schedule(sub)}"
    except SubscriptionError as exc:
        raise _fail(exc) from exc
    typer.echo(line if created else f"already subscribed: {line}")


@slack_app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Slack subscriptions: channel, interests, schedule, and any error that stopped them."""
    with session_scope(get_engine()) as session:
        subs = session.scalars(
            select(Subscription)
            .where(Subscription.channel == "slack", Subscription.status != "unsubscribed")
            .options(selectinload(Subscription.profile))
            .order_by(Subscription.id)
        )
        rows = [
            {
                "id": s.id,
                "address": s.address,
                "via": "webhook" if s.profile.name.startswith("slack-webhook:") else "bot",
                "interests": list(s.interests or []),
                "schedule": describe_schedule(s),
                "status": "paused" if s.paused else s.status,
                "needs_attention": s.needs_attention,
                "last_sent_at": s.last_sent_at.isoformat() if s.last_sent_at else None,
            }
            for s in subs
        ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title="Slack subscriptions")
    for column in ("id", "channel", "via", "interests", "schedule", "status"):
        table.add_column(column)
    for row in rows:
        status = str(row["status"]) + (
            f" — needs attention: {row['needs_attention']}" if row["needs_attention"] else ""
        )
        table.add_row(
            str(row["id"]),
            str(row["address"]),
            str(row["via"]),
            ", ".join(row["interests"]),  # type: ignore[arg-type]
            str(row["schedule"]),
            status,
        )
    Console().print(table)


@slack_app.command("manifest")
def manifest_command() -> None:
    """Print the Slack app manifest (JSON) for this BASE_URL, to paste when creating the app."""
    try:
        data = manifest(get_settings())
    except ManifestError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(data, indent=2))


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg="red", err=True)
    return typer.Exit(2)
