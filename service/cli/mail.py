"""`paperboy dkim keygen`, `paperboy bounces ingest PATH...`, `paperboy inbound`: mail that lands, and
what comes back."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from pathlib import Path

import typer

from service.config import get_settings
from service.db import get_engine, session_factory
from service.mail.dkim import DkimKey, generate_key, write_private_key
from service.mail.inbound import InboundServer, own_domains
from service.mail.intake import Taken, take_in
from service.mail.mailboxes import MailboxError, messages_in

dkim_app = typer.Typer(help="DKIM keys for signing outgoing mail.", no_args_is_help=True)
bounces_app = typer.Typer(
    help="Bounces, complaints and unsubscribe mail that came back.", no_args_is_help=True
)


@dkim_app.command("keygen")
def keygen(
    out: Path = typer.Option(Path("var/dkim"), "--out", help="Folder for the private key (0600)."),
    selector: str | None = typer.Option(None, help="Selector; default DKIM_SELECTOR."),
    domain: str | None = typer.Option(None, help="Domain; default DKIM_DOMAIN, else the SMTP_FROM domain."),
    kind: str = typer.Option("rsa", "--type", help="rsa (2048 bits) or ed25519."),
) -> None:
    """Write a new private key and print the DNS TXT record to publish for it."""
    settings = get_settings()
    selector = selector or (settings.dkim_selector if kind == "rsa" else settings.dkim_ed25519_selector)
    if not selector:
        typer.secho("error: --selector is required (DKIM_ED25519_SELECTOR is not set)", err=True)
        raise typer.Exit(2)
    domain = domain or settings.dkim_domain or settings.smtp_from.rpartition("@")[2].strip(" >")
    if kind not in ("rsa", "ed25519"):
        typer.secho(f"error: --type must be rsa or ed25519, not {kind!r}", err=True)
        raise typer.Exit(2)
    key = DkimKey(selector, domain, generate_key(kind))
    path = out / f"{selector}.{domain}.{kind}.pem"
    try:
        write_private_key(key.key, path)
    except FileExistsError:
        typer.secho(f"error: {path} exists; a key is never overwritten (choose another --selector)", err=True)
        raise typer.Exit(2) from None
    setting = "DKIM_PRIVATE_KEY_FILE" if kind == "rsa" else "DKIM_ED25519_KEY_FILE"
    typer.echo(f"private key written to {path} (set {setting}={path})")
    typer.echo("publish this DNS record:")
    typer.echo(key.dns_record())


def print_taken(taken: Taken) -> None:
    if not taken.recorded:
        typer.echo(f"{taken.ref}: nothing recorded ({taken.why})")
    for r in taken.recorded:
        what = "duplicate, already recorded" if r.duplicate else r.effect
        delivery = f" delivery {r.delivery_id}" if r.delivery_id else ""
        typer.echo(f"{taken.ref}: {r.kind} {r.address or '(address hidden)'}{delivery}: {what}")


@bounces_app.command("ingest")
def ingest(
    paths: list[Path] = typer.Argument(..., help="Message files, Maildir folders or folders of .eml files."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be recorded; store and change nothing."
    ),
) -> None:
    """Record the delivery status notifications, complaints and unsubscribe requests in PATHs.

    Exit 0 when every message was read, 1 when a message could not be read, 2 for a missing path.
    """
    settings = get_settings()
    engine = get_engine()
    missing = [p for p in paths if not p.exists()]
    if missing:
        typer.secho(f"error: {missing[0]}: no such file or folder", err=True)
        raise typer.Exit(2)
    counts = {"messages": 0, "events": 0, "duplicates": 0, "unrecognised": 0}
    failed = 0
    for path in paths:
        try:
            for ref, data in messages_in(path):
                try:
                    # --dry-run does all the work, effects included, then rolls it back
                    with session_factory(engine)() as session, session.begin() as transaction:
                        taken = take_in(
                            session, data, settings=settings, ref=ref, now=dt.datetime.now(dt.UTC)
                        )
                        if dry_run:
                            transaction.rollback()
                except Exception as exc:  # one bad message must not stop the rest
                    failed += 1
                    typer.secho(f"{ref}: error: {type(exc).__name__}: {exc}", err=True)
                    continue
                counts["messages"] += 1
                counts["events"] += sum(not r.duplicate for r in taken.recorded)
                counts["duplicates"] += sum(r.duplicate for r in taken.recorded)
                counts["unrecognised"] += not taken.recorded
                print_taken(taken)
        except (MailboxError, OSError) as exc:
            failed += 1
            typer.secho(f"error: {exc}", err=True)
    note = " (dry run: nothing stored)" if dry_run else ""
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()) + f" failed={failed}{note}")
    raise typer.Exit(1 if failed else 0)


def inbound_command(
    host: str | None = typer.Option(None, help="Address to listen on; default INBOUND_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port; default INBOUND_PORT (2525); 0 takes a free one."),
    lmtp: bool = typer.Option(False, "--lmtp", help="Speak LMTP (behind Postfix/Dovecot) instead of SMTP."),
) -> None:
    """Receive bounces, complaints and unsubscribe mail by SMTP or LMTP, until SIGTERM or Ctrl-C."""
    settings = get_settings()
    server = InboundServer(get_engine(), settings, host=host, port=port, lmtp=lmtp)
    try:
        server.start()
    except OSError as exc:
        typer.secho(f"error: cannot listen on {server.host}:{server.port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    typer.echo(
        f"listening on {server.host}:{server.port} ({'LMTP' if lmtp else 'SMTP'}) for "
        f"{', '.join(sorted(own_domains(settings)))}; messages kept in {server.handler.folder}",
    )
    sys.stdout.flush()
    stop.wait()
    server.stop()
    typer.echo("stopped")


def doctor_command() -> None:
    """Check what a real sender needs, one line each; exit 0 only when a production sender would pass."""
    from service.mail.doctor import run_checks

    checks = run_checks(get_settings())
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for check in checks:
        typer.secho(f"{check.status:<4} {check.name}: {check.message}", fg=colour[check.status])
    failed = sum(c.status == "fail" for c in checks)
    typer.echo(f"{len(checks)} checks, {failed} failed")
    raise typer.Exit(1 if failed else 0)
