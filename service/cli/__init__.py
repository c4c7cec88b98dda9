"""The `paperboy` command: one Typer app, one sub-module per stage."""

from __future__ import annotations

import typer

from service.cli.db import db_app
from service.cli.deliveries import deliveries_app
from service.cli.digest import digest_app
from service.cli.eval import eval_app
from service.cli.ingest import ingest_command
from service.cli.match import match_command
from service.cli.papers import export_command, papers_app
from service.cli.profile import profile_app
from service.cli.run import register as register_run
from service.cli.secrets import secrets_app
from service.cli.slack import slack_app
from service.cli.sources import sources_app
from service.cli.status import status_command
from service.cli.subscriptions import register as register_subscriptions
from service.cli.web import web_command
from service.config import SettingsError

app = typer.Typer(
    help="paperboy: new research papers matched to your interests.",
    no_args_is_help=True,
    # A crash report must not print local variables: they can hold secrets.
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_app, name="db")
app.command("ingest")(ingest_command)
app.add_typer(papers_app, name="papers")
app.command("export")(export_command)
app.add_typer(profile_app, name="profile")
app.command("web")(web_command)
register_subscriptions(app)  # subscribe, subscriptions list, unsubscribe
app.add_typer(digest_app, name="digest")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(eval_app, name="eval")
app.command("match")(match_command)
register_run(app)  # run, dispatch, ingest-sources
app.add_typer(sources_app, name="sources")
app.add_typer(slack_app, name="slack")
app.add_typer(secrets_app, name="secrets")
app.command("status")(status_command)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise SystemExit(2) from None
