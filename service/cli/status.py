"""`paperboy status`: is the service running, what comes next, what happened in the last 24 hours."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer
from sqlalchemy import Engine, func, inspect, or_, select
from sqlalchemy.orm import Session

from service import why
from service.clock import SystemClock
from service.config import get_settings
from service.db import get_engine
from service.delivery.lease import SCHEDULER_LEASE, current
from service.delivery.recovery import owner_dead
from service.delivery.schedule import Schedule, ScheduleError, latest_slot
from service.delivery.scheduler import JOBS_TABLE
from service.mail.events import mail_rates
from service.models import Delivery, IngestRun, Source, Subscriber, Subscription

STUCK_CLAIM = dt.timedelta(hours=1)  # a delivery claimed this long ago and never marked needs a look


def _when(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else None


def job_runs(engine: Engine) -> dict[str, str | None]:
    """Next run time of each scheduler job, from APScheduler's job table (absent before the first run)."""
    if not inspect(engine).has_table(JOBS_TABLE):
        return {}
    from sqlalchemy import MetaData, Table

    jobs = Table(JOBS_TABLE, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.id, jobs.c.next_run_time).order_by(jobs.c.id)).all()
    return {
        row.id: _when(dt.datetime.fromtimestamp(row.next_run_time, dt.UTC)) if row.next_run_time else None
        for row in rows
    }


def collect_status(engine: Engine, now: dt.datetime) -> dict[str, Any]:
    """Everything `paperboy status` shows, as plain data (the --json output)."""
    since = now - dt.timedelta(hours=24)
    holder = current(engine, SCHEDULER_LEASE)
    with engine.connect() as conn:
        active = (Subscription.status == "active", Subscription.paused.is_(False))
        next_digest = conn.execute(select(func.min(Subscription.next_digest_at)).where(*active)).scalar()
        due_now = conn.execute(
            select(func.count()).where(*active, Subscription.next_digest_at <= now)
        ).scalar()
        last = conn.execute(select(IngestRun).order_by(IngestRun.id.desc()).limit(1)).first()
        by_status = dict(
            conn.execute(
                select(Delivery.status, func.count())
                .where(Delivery.updated_at >= since)
                .group_by(Delivery.status)
            ).all()
        )
        attention = conn.execute(
            select(Subscription.id, Subscription.address, Subscription.needs_attention, Subscriber.flagged)
            .outerjoin(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.status == "active")
            .where(or_(Subscription.needs_attention.is_not(None), Subscriber.flagged.is_(True)))
            .order_by(Subscription.id)
        ).all()
        stuck = conn.execute(
            select(Delivery.id, Delivery.subscription_id, Delivery.period, Delivery.claimed_by).where(
                Delivery.status == "claimed",
                # Stuck at once when its owner is known dead; else after STUCK_CLAIM.
                or_(Delivery.claimed_at < now - STUCK_CLAIM, owner_dead(now)),
            )
        ).all()
        sources = conn.execute(
            select(Source.name, Source.last_status, Source.last_polled_at, Source.last_error).order_by(
                Source.name
            )
        ).all()
        mail = mail_rates(conn, now).as_dict()
    with Session(engine) as session:  # "why no email": the last pass by outcome; a quiet ingest day
        pass_at, pass_outcomes = why.last_pass_summary(session)
        quiet_ingest = why.quiet_ingest_warning(session, now)
    return {
        "last_pass": {"started_at": _when(pass_at), "outcomes": pass_outcomes} if pass_at else None,
        "ingest_warning": quiet_ingest,
        "now": _when(now),
        "scheduler": {
            "holder": holder.holder if holder and holder.expires_at > now else None,
            "lease_expires_at": _when(holder.expires_at) if holder else None,
            "jobs": job_runs(engine),
        },
        "next_digest_at": _when(next_digest),
        "due_now": due_now,
        # How long the longest-waiting due digest has waited (paperboy_queue_lag_seconds).
        "queue_lag_s": round((now - next_digest).total_seconds()) if due_now and next_digest else 0,
        "last_ingest": None
        if last is None
        else {
            "run": last.id,
            "source": last.source,
            "path": last.path,
            "status": last.status,
            "finished_at": _when(last.finished_at or last.started_at),
            "new": last.new,
            "updated": last.updated,
            "duplicate": last.duplicate,
            "rejected": last.rejected,
        },
        "sources": [
            {
                "name": s.name,
                "status": s.last_status,
                "polled_at": _when(s.last_polled_at),
                "error": s.last_error,
            }
            for s in sources
        ],
        "deliveries_24h": {
            "sent": by_status.get("sent", 0),
            "pending": by_status.get("claimed", 0) + by_status.get("retry", 0),
            "failed": by_status.get("failed", 0),
            "empty": by_status.get("empty", 0),
        },
        "mail_7d": mail,
        "needs_attention": [
            {
                "subscription": r.id,
                "address": r.address,
                "why": r.needs_attention or "address flagged (hard bounces)",
            }
            for r in attention
        ]
        + [
            {
                "subscription": r.subscription_id,
                "address": None,
                "why": f"delivery {r.id} ({r.period}) claimed by {r.claimed_by} and never marked: "
                f"check whether it was sent, then `paperboy deliveries resolve {r.id} --sent|--resend`",
            }
            for r in stuck
        ],
    }


def status_command(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Next run times, the last ingest, deliveries in the last 24 h, subscriptions needing attention."""
    from service.cli.run import require_schema

    engine = get_engine(get_settings())
    require_schema(engine)
    data = collect_status(engine, SystemClock().now())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    sched = data["scheduler"]
    typer.echo(
        f"scheduler: {'running on ' + sched['holder'] if sched['holder'] else 'no instance holds the lease'}"
    )
    for job, at in sched["jobs"].items() or {"(no jobs yet)": None}.items():
        # Without a leader the stored time is only when the job would have run: a new leader runs it at once.
        note = "" if sched["holder"] else " (as stored; runs as soon as an instance starts)"
        typer.echo(f"  {job}: next run {at or '-'}{note}")
    lag = f", the oldest waiting {data['queue_lag_s']} s" if data["queue_lag_s"] else ""
    typer.echo(f"next digest: {data['next_digest_at'] or '-'} ({data['due_now']} due now{lag})")
    last = data["last_ingest"]
    if last:
        typer.echo(
            f"last ingest: run {last['run']} {last['status']} at {last['finished_at']} from {last['source']} "
            f"({last['path']}): new={last['new']} updated={last['updated']} "
            f"duplicate={last['duplicate']} rejected={last['rejected']}"
        )
    else:
        typer.echo("last ingest: none yet")
    if data["ingest_warning"]:
        typer.secho(f"  warning: {data['ingest_warning']}", fg="yellow")
    if data["last_pass"]:
        counts = ", ".join(f"{k.replace('_', ' ')}={v}" for k, v in data["last_pass"]["outcomes"].items())
        typer.echo(f"last dispatch pass: {data['last_pass']['started_at']}: {counts or 'nothing due'}")
    for s in data["sources"]:
        line = f"  source {s['name']}: {s['status'] or 'never polled'} {s['polled_at'] or ''}"
        typer.echo(f"{line} {s['error'] or ''}".rstrip())
    d = data["deliveries_24h"]
    typer.echo(
        f"deliveries (24 h): sent={d['sent']} pending={d['pending']} failed={d['failed']} empty={d['empty']}"
    )
    echo_mail(data["mail_7d"])
    attention = data["needs_attention"]
    typer.echo(f"needs attention: {len(attention) or 'nothing'}")
    for item in attention:
        typer.echo(f"  subscription {item['subscription']} {item['address'] or ''}: {item['why']}")


def echo_mail(mail: dict[str, Any]) -> None:
    """Email sent and what came back over 7 days, with the rates mailbox providers watch."""

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    events = mail["events"]
    typer.echo(
        f"mail ({mail['days']} d): sent={mail['sent']} hard_bounces={events.get('hard_bounce', 0)} "
        f"soft_bounces={events.get('soft_bounce', 0)} complaints={events.get('complaint', 0)} "
        f"unsubscribes={events.get('unsubscribe', 0)} bounce_rate={rate(mail['bounce_rate'])} "
        f"complaint_rate={rate(mail['complaint_rate'])}"
    )
    for warning in mail["warnings"]:
        typer.secho(f"  warning: {warning}", fg="yellow")


def show_due(engine: Engine, now: dt.datetime) -> None:
    """`dispatch --dry-run`: the subscriptions and retries a pass would deliver now."""
    from service.db import session_factory
    from service.delivery import retries_due

    with session_factory(engine)() as session:
        due = session.scalars(
            select(Subscription)
            .where(Subscription.status == "active", Subscription.paused.is_(False))
            .where(Subscription.next_digest_at <= now)
            .order_by(Subscription.next_digest_at)
        ).all()
        retries = retries_due(session, now)
    typer.echo(f"{len(due)} subscription(s) due, {len(retries)} retry(ies) due")
    for sub in due:
        try:
            period = latest_slot(Schedule.of(sub), now).period
        except ScheduleError as exc:
            period = f"(bad schedule: {exc})"
        where = f"{sub.channel}:{sub.address}"
        typer.echo(f"  subscription {sub.id} {where} period {period} (due {_when(sub.next_digest_at)})")
    for subscription_id, period in retries:
        typer.echo(f"  retry: subscription {subscription_id} period {period}")
