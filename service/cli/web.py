"""`paperboy web`: serve the subscription pages, the admin API and the Slack endpoints with uvicorn."""

from __future__ import annotations

import typer


def web_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port, printed at start)."),
    proxy_headers: bool = typer.Option(
        False, help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a reverse proxy)."
    ),
    forwarded_allow_ips: str = typer.Option("127.0.0.1", help="Proxies whose forwarded headers are trusted."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the web app (BASE_URL must be the address people reach it at: links in emails use it)."""
    import uvicorn

    from service.config import get_settings
    from service.web.app import create_app
    from service.web.log_redaction import uvicorn_log_config

    settings = get_settings()
    app = create_app(settings)
    typer.echo(f"paperboy web on http://{host}:{port} (links point to {settings.base_url})")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=log_level,
        log_config=uvicorn_log_config(),  # link tokens redacted in every line
        server_header=False,
    )
