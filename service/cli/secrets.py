"""`paperboy secrets rotate`: move to a new secret key without breaking links or stored secrets."""

from __future__ import annotations

import typer

from service.config import get_settings
from service.db import get_engine, session_scope
from service.secrets import SecretError, add_generated_key, reseal_all

secrets_app = typer.Typer(help="The secret key and the secrets stored encrypted.", no_args_is_help=True)


@secrets_app.command("rotate")
def rotate_command(
    new_key: bool = typer.Option(
        False,
        "--new-key",
        help="Put a new random key first in VAR_DIR/secret_key (when SECRET_KEY is unset).",
    ),
) -> None:
    """Re-encrypt every stored secret under the newest key.

    With SECRET_KEY set: set SECRET_KEY to the new key and OLD_SECRET_KEYS='["old key"]', run this,
    and drop OLD_SECRET_KEYS once the links signed with the old key have expired (TOKEN_MAX_AGE_DAYS).
    With the generated key: `--new-key` adds a key; the old one stays in the file, still accepted."""
    from service.cli.run import require_schema

    settings = get_settings()
    try:
        if new_key:
            add_generated_key(settings)
            get_settings.cache_clear()
            settings = get_settings()
        engine = get_engine(settings)
        require_schema(engine)
        with session_scope(engine) as session:
            count = reseal_all(session, settings)
    except SecretError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"re-encrypted {count} stored secret{'s' if count != 1 else ''} under the newest key")
