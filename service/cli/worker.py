"""`paperboy worker`: a Celery worker for the match / email / slack queues (needs BROKER_URL);
`paperboy metrics`: the delivery path's Prometheus metrics."""

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
    from service.cli.run import configure_logging

    configure_logging()
    app = configure(settings)
    app.conf.worker_hijack_root_logger = False  # our format (LOG_FORMAT), not Celery's
    argv = ["worker", "-Q", ",".join(settings.queue_prefix + q for q in names), "-l", loglevel]
    argv += ["--prefetch-multiplier", "1", "-E"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if name:
        argv += ["-n", name]
    app.worker_main(argv)


def metrics_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(9108, min=0, max=65535, help="TCP port of the /metrics endpoint."),
) -> None:
    """Serve Prometheus metrics of the delivery path over HTTP."""
    import threading

    from prometheus_client import start_http_server

    from service.cli.run import configure_logging, install_stop_handlers, require_schema
    from service.db import get_engine
    from service.delivery.metrics import registry_for

    configure_logging()
    settings = get_settings()
    engine = get_engine(settings)
    require_schema(engine)
    server, _thread = start_http_server(port, addr=host, registry=registry_for(engine))
    typer.echo(f"metrics on http://{host}:{server.server_port}/metrics")
    stop = threading.Event()
    install_stop_handlers(stop, settings)
    stop.wait()
    server.shutdown()
