"""The `paperboy` command: one Typer app, one sub-module per stage."""

from __future__ import annotations

import typer

from service.cli.db import db_app

app = typer.Typer(help="paperboy: new research papers matched to your interests.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def main() -> None:
    app()
