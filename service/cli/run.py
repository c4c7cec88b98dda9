"""`paperboy run [--demo]`, `paperboy dispatch --now`, `paperboy ingest-sources --now`.

`run` is the main job: it holds the scheduler lease (or stands by), ingests and dispatches on its two
fixed jobs, and on SIGTERM/SIGINT stops taking new work, lets the sends in flight finish and exits 0.
The one-pass commands are for people who prefer cron; exit codes: 0 all went well, 1 something failed
(a rejected file, a failed source or delivery), 2 usage or setup error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import NoReturn

import typer
from sqlalchemy import Engine, inspect

from service.cli import group
from service.clock import SystemClock
from service.config import Settings, SetupError, get_settings
from service.db import get_engine
from service.delivery.lease import instance_name

log = logging.getLogger("paperboy.run")


def configure_logging(verbose: bool = False) -> None:
    """One line per record on stderr; paperboy's own lines carry key=value fields (LOG_FORMAT=text),
    or one JSON object per record (LOG_FORMAT=json)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    if get_settings().log_format == "json":
        from service.oplog import json_formatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(json_formatter())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # its per-run lines repeat ours
    logging.getLogger("httpx").setLevel(logging.WARNING)


def require_schema(engine: Engine) -> None:
    """Refuse to start on a database that was never migrated (with the command that fixes it)."""
    if not inspect(engine).has_table("subscriptions"):
        from service.cli.setup_errors import UPGRADE

        where = engine.url.render_as_string(hide_password=True)
        raise SetupError(
            f"the database at {where} has no paperboy schema: {UPGRADE}"
        )  # printed by the CLI group


def install_stop_handlers(stop: threading.Event, settings: Settings) -> None:
    """SIGTERM/SIGINT: stop taking new work. A second signal, or a shutdown that outlasts the grace
    period (a send hanging past every timeout), exits at once."""

    def force_exit(reason: str) -> None:
        log.error("event=shutdown forced=true reason=%s", reason)
        logging.shutdown()
        os._exit(1)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            force_exit(f"second-{name}")
        log.info("event=shutdown signal=%s finishing sends in flight", name)
        stop.set()
        grace = threading.Timer(settings.shutdown_grace_s, force_exit, args=("grace-period-over",))
        grace.daemon = True
        grace.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def run_command(
    demo: bool = typer.Option(
        False, "--demo", help="Fresh machine: migrate, ingest samples/dumps, subscribe a demo reader, send."
    ),
    once: bool = typer.Option(False, "--once", help="One ingest pass and one dispatch pass, then exit."),
    max_seconds: float | None = typer.Option(
        None, "--max-seconds", min=0, help="Exit cleanly after this many seconds (smoke tests)."
    ),
    samples: Path | None = typer.Option(None, "--samples", help="Dumps for --demo (default: samples/dumps)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, max=65535, help="Serve Prometheus metrics on this port (loopback)."
    ),
) -> None:
    """The main job: ingest new dumps and send every due digest, until SIGTERM or Ctrl-C."""
    from service.channels.email import check_email_settings
    from service.delivery.dispatch import run_dispatch
    from service.delivery.scheduler import SchedulerService
    from service.sources import run_ingest_pass

    configure_logging(verbose)
    settings = get_settings()
    check_email_settings(settings)  # refuse at start, not at the first due digest
    clock = SystemClock()
    if demo:
        from service.cli.demo import prepare_demo

        engine = prepare_demo(settings, clock, samples)
    else:
        engine = get_engine(settings)
        require_schema(engine)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from service.delivery.metrics import registry_for

        start_http_server(metrics_port, addr="127.0.0.1", registry=registry_for(engine))
    stop = threading.Event()
    install_stop_handlers(stop, settings)
    if once:
        ingest = run_ingest_pass(engine, settings, clock, should_stop=stop.is_set)
        report = run_dispatch(engine, settings, clock, instance=instance_name(), should_stop=stop.is_set)
        raise typer.Exit(1 if ingest.failed or report.failed else 0)
    service = SchedulerService(engine, settings, clock, stop=stop)
    log.info(
        "event=start instance=%s dispatch_interval_s=%s ingest_interval_s=%s drop_dir=%s",
        service.instance,
        settings.dispatch_interval_s,
        settings.ingest_interval_s,
        settings.resolved_drop_dir,
    )
    service.run(max_seconds=max_seconds)
    log.info("event=stopped instance=%s", service.instance)
    if group.RUNNING_AS_PROGRAM:
        leave_at_once(engine)


def leave_at_once(engine: Engine) -> NoReturn:
    """Exit 0 now that the jobs are done and the lease is released, without the interpreter's teardown.

    Tearing down ~1,200 modules (SQLAlchemy, APScheduler, numpy, scipy...) and their objects took 2-5 s
    after SIGTERM, time a supervisor waits for. Nothing is left to do in it: connections are closed
    here, and logs and output flushed.
    """
    engine.dispose()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _one_pass(now: bool, dry_run: bool, does: str, shows: str) -> tuple[Settings, SystemClock, Engine]:
    """The common start of a one-pass (cron) command: usage check, logging, a migrated database."""
    if not (now or dry_run):
        typer.secho(f"give --now to {does}, or --dry-run to {shows}", err=True)
        raise typer.Exit(2)
    configure_logging()
    settings, clock = get_settings(), SystemClock()
    engine = get_engine(settings)
    require_schema(engine)
    return settings, clock, engine


def dispatch_command(
    now: bool = typer.Option(False, "--now", help="Run one dispatch pass now."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what is due; send nothing."),
) -> None:
    """Deliver every due digest and due retry once (for cron)."""
    from service.channels.email import check_email_settings
    from service.cli.status import show_due
    from service.delivery.dispatch import run_dispatch

    settings, clock, engine = _one_pass(now, dry_run, "run a dispatch pass", "see what is due")
    check_email_settings(settings)
    if dry_run:
        show_due(engine, clock.now())
        return
    stop = threading.Event()
    install_stop_handlers(stop, settings)
    report = run_dispatch(engine, settings, clock, instance=instance_name(), should_stop=stop.is_set)
    counts = {s: report.count(s) for s in ("sent", "empty", "retry", "failed", "skipped")}
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()) + f" errors={len(report.errors)}")
    for error in report.errors:
        typer.secho(f"error: {error}", fg="red", err=True)
    raise typer.Exit(1 if report.failed else 0)


def ingest_sources_command(
    now: bool = typer.Option(False, "--now", help="Scan the drop folder and poll every source now."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be read; read nothing."),
) -> None:
    """Ingest new files from the drop folder and new dumps from HTTP sources once (for cron)."""
    from service.sources import pending_drop_files, run_ingest_pass

    settings, clock, engine = _one_pass(now, dry_run, "run an ingest pass", "see what would be read")
    if dry_run:
        from service.cli.sources import print_sources

        drop = settings.resolved_drop_dir
        files = pending_drop_files(drop, settle_s=settings.drop_settle_s)
        typer.echo(f"drop folder {drop}: {len(files)} file(s) waiting")
        for path in files:
            typer.echo(f"  {path.name}")
        print_sources(engine, settings)
        return
    stop = threading.Event()
    install_stop_handlers(stop, settings)
    result = run_ingest_pass(engine, settings, clock, should_stop=stop.is_set)
    for d in result.drops:
        detail = d.error or (f"{d.ingest.status} new={d.ingest.new}" if d.ingest else "")
        typer.echo(f"drop {d.name}: {d.outcome} {detail}".rstrip())
    for p in result.polls:
        detail = p.error or (f"new={p.ingest.new}" if p.ingest else "")
        typer.echo(f"source {p.source}: {p.status} {detail}".rstrip())
    raise typer.Exit(1 if result.failed else 0)
