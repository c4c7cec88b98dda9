"""`paperboy inbound`: a real aiosmtpd listener on a free loopback port, fed by smtplib."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.links import unsubscribe_url
from service.mail.bounce_path import return_path
from service.mail.inbound import InboundServer
from service.models import MailEvent, Subscriber, Subscription
from tests.mail import samples
from tests.mail.test_intake import mail_settings, sent_delivery

SETTINGS = mail_settings(hard_bounce_limit=1)


@pytest.fixture
def inbound(committed_engine: Engine, tmp_path: Path) -> Iterator[InboundServer]:
    with InboundServer(committed_engine, SETTINGS, port=0, folder=tmp_path / "inbound") as server:
        yield server


def send(port: int, sender: str, recipient: str, data: bytes, *, lmtp: bool = False) -> None:
    client = smtplib.LMTP("127.0.0.1", port) if lmtp else smtplib.SMTP("127.0.0.1", port, timeout=10)
    with client:
        client.sendmail(sender, [recipient], data)


def test_a_bounce_and_an_unsubscribe_request_arrive_by_smtp_and_are_recorded(
    inbound: InboundServer, committed_engine: Engine, tmp_path: Path
) -> None:
    with Session(committed_engine) as session, session.begin():
        delivery = sent_delivery(session)
        other = sent_delivery(session, "bob@example.org")
        other_sub = session.get_one(Subscription, other.subscription_id)
        token = unsubscribe_url(other_sub.subscriber_id, other_sub.id, SETTINGS).rsplit("/", 1)[1]
        sub_id, delivery_id, other_id = delivery.subscription_id, delivery.id, other_sub.id
    assert inbound.port > 0
    verp = return_path(SETTINGS, sub_id, "2026-11-23") or ""
    send(inbound.port, "", verp, samples.rfc3464("ada@example.org", to="someone@else", message_id="<x@y>"))
    send(inbound.port, "bob@example.org", "unsubscribe@paperboy.example", samples.unsubscribe_mail(token))
    with Session(committed_engine) as session:
        rows = session.scalars(select(MailEvent).order_by(MailEvent.id)).all()
        assert [(e.kind, e.address) for e in rows] == [
            ("hard_bounce", "ada@example.org"),
            ("unsubscribe", "bob@example.org"),
        ]
        # the envelope recipient (the VERP address) named the delivery; nothing in the report did
        assert rows[0].delivery_id == delivery_id
        saved = Path(rows[0].raw_ref)
        assert saved.is_relative_to(tmp_path / "inbound") and b"User unknown" in saved.read_bytes()
        ada = session.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
        assert ada is not None and ada.flagged
        assert session.get_one(Subscription, other_id).status == "unsubscribed"


def test_lmtp_works_too(committed_engine: Engine, tmp_path: Path) -> None:
    with InboundServer(committed_engine, SETTINGS, port=0, lmtp=True, folder=tmp_path) as server:
        send(
            server.port,
            "",
            "bounces@mail.paperboy.example",
            samples.qmail("zed@example.org", to="x"),
            lmtp=True,
        )
        assert [r.kind for r in server.handler.taken[0].recorded] == ["hard_bounce"]


def test_lmtp_answers_data_once_per_recipient(committed_engine: Engine, tmp_path: Path) -> None:
    data = samples.rfc3464("ada@example.org").replace(b"\r\n.", b"\r\n..")
    with (
        InboundServer(committed_engine, SETTINGS, port=0, lmtp=True, folder=tmp_path) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        replies = sock.makefile("rb")

        def say(line: bytes) -> None:
            sock.sendall(line + b"\r\n")

        assert replies.readline().startswith(b"220")
        say(b"LHLO mx.example.org")
        while not replies.readline().startswith(b"250 "):
            pass
        say(b"MAIL FROM:<>")
        assert replies.readline().startswith(b"250")
        for rcpt in (b"bounces@mail.paperboy.example", b"fbl@mail.paperboy.example"):
            say(b"RCPT TO:<" + rcpt + b">")
            assert replies.readline().startswith(b"250")
        say(b"DATA")
        assert replies.readline().startswith(b"354")
        sock.sendall(data + b".\r\n")
        assert [replies.readline().strip() for _ in range(2)] == [b"250 2.0.0 recorded"] * 2
        say(b"QUIT")


def test_recipients_outside_the_service_domains_are_refused(inbound: InboundServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(inbound.port, "a@example.org", "victim@example.com", samples.personal_mail("victim@example.com"))
    assert refused.value.recipients["victim@example.com"][0] == 550


def test_a_message_that_cannot_be_recorded_is_kept_and_deferred(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr("service.mail.inbound.take_in", broken)
    with (
        InboundServer(committed_engine, SETTINGS, port=0, folder=tmp_path) as server,
        pytest.raises(smtplib.SMTPDataError) as deferred,
    ):
        send(server.port, "", "bounces@mail.paperboy.example", samples.rfc3464("ada@example.org"))
    assert deferred.value.smtp_code == 451
    [kept] = list(tmp_path.glob("*/*.eml"))
    assert b"User unknown" in kept.read_bytes()


def test_the_paperboy_inbound_command_listens_and_stops_on_sigterm(cli_env: Engine, tmp_path: Path) -> None:
    if cli_env.dialect.name != "sqlite":  # a process start is slow; the storage is tested on both above
        pytest.skip("the command's process is tested once, on SQLite")
    env = dict(
        os.environ, BOUNCE_ADDRESS="bounces@mail.paperboy.example", UNSUBSCRIBE_MAILTO="u@paperboy.example"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from service.cli import main; main()", "inbound", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        port = int(line.split(":", 1)[1].split()[0])
        send(port, "", "bounces@mail.paperboy.example", samples.rfc3464("nobody@example.org"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with Session(cli_env) as session:
        assert [e.kind for e in session.scalars(select(MailEvent))] == ["hard_bounce"]
    assert list((tmp_path / "inbound").glob("*/*.eml"))
