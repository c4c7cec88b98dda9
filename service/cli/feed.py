"""`paperboy feed subscribe|url`: feed-only subscriptions and the private feed links."""

from __future__ import annotations

import typer

from service.config import get_settings
from service.db import get_engine, session_scope
from service.links import feed_url
from service.models import Subscription, utcnow
from service.subscription import (
    SubscriptionError,
    SubscriptionRequest,
    create_subscription,
    describe_schedule,
)

feed_app = typer.Typer(help="Feeds: a private Atom / RSS feed per subscription.", no_args_is_help=True)


@feed_app.command("subscribe")
def subscribe_command(
    email: str = typer.Argument(..., help="The reader's address (no email is sent to it)."),
    interest: list[str] = typer.Option(
        [], "--interest", "-i", help="An interest in plain words (repeatable)."
    ),
    query: str | None = typer.Option(None, "--query", "-q", help="Query language."),
    cadence: str = typer.Option("daily", help="How often new papers are added: daily, weekdays or weekly."),
    weekday: str | None = typer.Option(None, help="Day of a weekly update: mon ... sun."),
    time: str = typer.Option("08:00", "--time", help="Local time of the update, HH:MM."),
    timezone: str = typer.Option("UTC", help="IANA time zone."),
    max_papers: int = typer.Option(10, help="At most this many papers an update."),
) -> None:
    """A feed-only subscription: the digest's papers go to the feed, never to an inbox."""
    settings = get_settings()
    request = SubscriptionRequest(
        email=email,
        interests=interest,
        query=query,
        cadence=cadence,
        weekday=weekday,
        send_time=time,
        timezone=timezone,
        max_papers=max_papers,
        channel="feed",
    )
    try:
        with session_scope(get_engine(settings)) as session:
            sub = create_subscription(session, request)
            line = f"subscription {sub.id}: feed for {sub.address}, {describe_schedule(sub)}"
            url = feed_url(sub.subscriber_id, sub.id, "atom", settings)
    except SubscriptionError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(line)
    typer.echo(f"feed: {url}")


@feed_app.command("url")
def url_command(
    subscription: int = typer.Argument(..., help="Subscription id."),
    rss: bool = typer.Option(False, "--rss", help="The RSS 2.0 link instead of Atom."),
    reset: bool = typer.Option(False, "--reset", help="Revoke every earlier link (410 Gone) first."),
) -> None:
    """The subscription's private feed link."""
    settings = get_settings()
    with session_scope(get_engine(settings)) as session:
        sub = session.get(Subscription, subscription)
        if sub is None:
            typer.secho(f"error: subscription {subscription} does not exist", fg="red", err=True)
            raise typer.Exit(2)
        if reset:
            sub.feed_reset_at = utcnow()
        owner, sid = sub.subscriber_id, sub.id
    typer.echo(feed_url(owner, sid, "rss" if rss else "atom", settings))
