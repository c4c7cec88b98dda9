"""`paperboy worker`: a Celery worker for the match / email / slack queues (needs BROKER_URL)."""

from __future__ import annotations

import typer

from service.config import get_settings

QUEUES = ("match", "email", "slack")


def worker_command(
    queues: str = typer.Option(
        "match,email,slack", "--queues", "-Q", help="Comma-separated queues to consume."
    ),
    concurrency: int = typer.Option(0, "--concurrency", "-c", min=0, help="Processes (0: one per core)."),
    name: str = typer.Option("", "--name", "-n", help="Worker node name (default: celery@host)."),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
) -> None:
    """Run a Celery worker that composes and delivers the digests the clock enqueues."""
    from service.delivery.tasks import configure

    settings = get_settings()
    if not settings.broker_url:
        typer.secho(
            "error: BROKER_URL is not set; without a broker `paperboy run` does all the work", err=True
        )
        raise typer.Exit(2)
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        typer.secho(
            f"error: unknown queue(s) {', '.join(unknown)}; choose from match, email, slack", err=True
        )
        raise typer.Exit(2)
    app = configure(settings)
    argv = ["worker", "-Q", ",".join(settings.queue_prefix + q for q in names), "-l", loglevel]
    argv += ["--prefetch-multiplier", "1", "-E"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if name:
        argv += ["-n", name]
    app.worker_main(argv)
