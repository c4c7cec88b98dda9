"""`paperboy webhook subscribe PLATFORM NAME URL`: a digest posted to Discord, Teams or Mattermost."""

from __future__ import annotations

import typer

from service.channels.webhook import subscribe_webhook
from service.channels.webhook_payloads import PLATFORMS
from service.config import get_settings
from service.db import get_engine, session_scope
from service.subscription import SubscriptionError, describe_schedule

webhook_app = typer.Typer(
    help="Webhooks: digests posted to Discord, Teams or Mattermost.", no_args_is_help=True
)


@webhook_app.command("subscribe")
def subscribe_command(
    platform: str = typer.Argument(..., help=f"One of {', '.join(PLATFORMS)}."),
    name: str = typer.Argument(..., help="A name for this webhook (shown in lists, never the URL)."),
    url: str = typer.Argument(..., help="The incoming-webhook URL (stored encrypted)."),
    interest: list[str] = typer.Option(
        [], "--interest", "-i", help="An interest in plain words (repeatable)."
    ),
    query: str | None = typer.Option(None, "--query", "-q", help="Query language."),
    cadence: str = typer.Option("daily", help="daily, weekdays or weekly."),
    weekday: str | None = typer.Option(None, help="Day of a weekly digest: mon ... sun."),
    time: str = typer.Option("08:00", "--time", help="Local send time, HH:MM."),
    timezone: str = typer.Option("UTC", help="IANA time zone."),
    max_papers: int = typer.Option(10, help="At most this many papers a digest."),
) -> None:
    settings = get_settings()
    try:
        with session_scope(get_engine(settings)) as session:
            sub = subscribe_webhook(
                session,
                platform,
                name,
                url,
                interest,
                settings,
                query=query,
                cadence=cadence,
                weekday=weekday,
                send_time=time,
                timezone=timezone,
                max_papers=max_papers,
            )
            interests = ", ".join(sub.interests)
            line = f"subscription {sub.id}: webhook {sub.address}, {interests}, {describe_schedule(sub)}"
    except SubscriptionError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(line)
