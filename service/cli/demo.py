"""`paperboy run --demo`: from nothing to a digest in the outbox on a fresh machine.

Migrates the database (SQLite in ./var by default), ingests the sample dumps shipped in samples/dumps,
subscribes a demo reader, and runs one dispatch pass at once, so a rendered digest lands in the outbox
(var/outbox/*.eml when no SMTP_URL is set). Running it again is harmless: the samples are already
ingested (reported no-ops) and today's digest was already delivered.
"""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import Engine, select, update

from service.clock import Clock
from service.config import Settings
from service.db import get_engine, session_scope
from service.delivery.dispatch import run_dispatch
from service.delivery.lease import instance_name
from service.ingest.runs import ingest_file
from service.migrations import upgrade
from service.models import Subscriber, Subscription
from service.sources import log_ingest_run
from service.subscription import SubscriptionRequest, create_subscription

# Beside the package in a checkout (editable install); in the current folder otherwise (the Docker image
# installs the package into site-packages and keeps samples/ in its working directory).
SAMPLE_DIRS = (Path(__file__).resolve().parents[2] / "samples" / "dumps", Path("samples") / "dumps")
DEMO_EMAIL = "demo-reader@example.org"
DEMO_INTERESTS = ("sparse attention", "speculative decoding", "retrieval augmented generation")


def prepare_demo(settings: Settings, clock: Clock, samples: Path | None = None) -> Engine:
    """Migrate, ingest the samples, subscribe the demo reader and deliver their first digest."""
    samples = samples or next((d for d in SAMPLE_DIRS if d.is_dir()), SAMPLE_DIRS[0])
    if not samples.is_dir():
        typer.secho(f"error: no sample dumps at {samples} (give --samples PATH)", fg="red", err=True)
        raise typer.Exit(2)
    engine = get_engine(settings)  # first: it checks DATABASE_URL and creates VAR_DIR
    upgrade(settings.resolved_database_url)
    for path in sorted(p for p in samples.iterdir() if p.is_file() and not p.name.startswith(".")):
        log_ingest_run(ingest_file(engine, path, source="samples"), source="samples", where=path.name)
    subscription_id = _demo_subscription(engine, clock)
    report = run_dispatch(engine, settings, clock, instance=f"demo:{instance_name()}")
    for error in report.errors:
        typer.secho(f"error: {error}", fg="red", err=True)
    for outcome in report.outcomes:
        if outcome.subscription_id == subscription_id:
            typer.echo(f"demo: digest for {outcome.period}: {outcome.status} {outcome.error or ''}".rstrip())
    if settings.smtp_url is None:
        outbox = settings.resolved_outbox_dir
        eml = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
        typer.echo(f"demo: {len(eml)} digest(s) in {outbox}" + (f", the latest: {eml[-1]}" if eml else ""))
    typer.echo("demo: running the scheduler; Ctrl-C (or SIGTERM) stops it cleanly")
    return engine


def _demo_subscription(engine: Engine, clock: Clock) -> int:
    """The demo reader's daily digest, due now (created on first run, found on later ones)."""
    with session_scope(engine) as session:
        existing = session.scalar(
            select(Subscription.id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == DEMO_EMAIL, Subscription.status == "active")
            .limit(1)
        )
        if existing is None:
            request = SubscriptionRequest(email=DEMO_EMAIL, interests=list(DEMO_INTERESTS), max_papers=5)
            existing = create_subscription(session, request).id
        # Due now, so the demo shows a digest at once instead of at tomorrow's 08:00 UTC.
        session.execute(
            update(Subscription).where(Subscription.id == existing).values(next_digest_at=clock.now())
        )
        return existing
