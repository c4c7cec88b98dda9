"""The email channel without a server: outbox files, SMTP_URL parsing, the rate limit."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.channels.email import EmailChannel, RateLimiter, header_line, sender_address, transport_for
from service.channels.smtp import OutboxTransport, SmtpConfigError, SmtpTransport, parse_smtp_url
from service.config import Settings
from service.models import Subscription
from tests.digest.test_render import digest, golden_digest, item


def test_without_smtp_messages_land_in_the_outbox(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)
    channel = EmailChannel(settings)
    assert isinstance(channel.transport, OutboxTransport)
    message_id = channel.send(Subscription(id=7, channel="email", address="r@example.org"), golden_digest())
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == ["digest.7.2026-11-23_paperboy.localhost.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Message-ID"] == message_id
    assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None
    # The same delivery sent again (a retry) replaces its file rather than adding a second one.
    channel.send(Subscription(id=7, channel="email", address="r@example.org"), digest([item(1)]))
    assert len(list((tmp_path / "outbox").iterdir())) == 1


def test_smtp_url_forms() -> None:
    t = parse_smtp_url("smtp://user%40corp:p%3Ass@mail.example.org")
    assert (t.scheme, t.host, t.port, t.username, t.password) == (
        "smtp",
        "mail.example.org",
        587,
        "user@corp",
        "p:ss",
    )
    assert not t.loopback
    assert parse_smtp_url("smtps://mail.example.org").port == 465
    assert parse_smtp_url("smtp://127.0.0.1:2525").loopback
    for bad in ("http://x", "smtp://", "smtp://host:notaport", "mail.example.org"):
        with pytest.raises(SmtpConfigError) as error:
            parse_smtp_url(bad)
        assert "SMTP_URL" in str(error.value)
    with pytest.raises(SmtpConfigError) as error:
        parse_smtp_url("ftp://user:topsecret@host")
    assert "topsecret" not in str(error.value)


def test_transport_follows_settings(tmp_path: Path) -> None:
    assert isinstance(transport_for(Settings(_env_file=None, var_dir=tmp_path)), OutboxTransport)
    smtp = transport_for(Settings(_env_file=None, smtp_url=SecretStr("smtps://u:p@mail.example.org")))
    assert isinstance(smtp, SmtpTransport) and smtp.target.scheme == "smtps"


def test_sender_address_is_checked() -> None:
    assert sender_address(Settings(_env_file=None, smtp_from="Zoë <z@example.org>")).display_name == "Zoë"
    with pytest.raises(ValueError, match="SMTP_FROM"):
        sender_address(Settings(_env_file=None, smtp_from="not an address"))


def test_rate_limiter_spaces_sends_evenly() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(4.0, sleep=sleep, monotonic=lambda: clock[0])
    for _ in range(5):
        limiter.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    clock[0] += 10  # idle time is not saved up as a burst beyond the next slot
    limiter.wait()
    limiter.wait()
    assert slept[-1] == 0.25 and len(slept) == 5
    unlimited = RateLimiter(0, sleep=sleep, monotonic=lambda: clock[0])
    unlimited.wait()
    assert len(slept) == 5


def test_header_lines_are_single_lines() -> None:
    assert header_line("List-Id", "paperboy digest <digest.example.org>") == (
        b"List-Id: paperboy digest <digest.example.org>\r\n"
    )
    encoded = header_line("Subject", "7 new papers on sparse attention · Mon 23 Nov")
    assert encoded.isascii() and b"=?utf-8?" in encoded and encoded.endswith(b"\r\n")
    parsed = email.message_from_bytes(encoded + b"\r\n", policy=email.policy.default)
    assert parsed["Subject"] == "7 new papers on sparse attention · Mon 23 Nov"
    for evil in ("a\r\nBcc: x@example.org", "a\nBcc: x", "a\rb", "a\x0bb", "a\u2028b"):
        with pytest.raises(ValueError):
            header_line("Subject", evil)
    with_tab = header_line("Subject", "a\tb")  # not printable: the email package's path
    assert b"\r\n" not in with_tab[:-2]
