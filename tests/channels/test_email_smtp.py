"""The email channel against a real aiosmtpd on loopback: messages parsed back, SMTP errors classified."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.channels.base import DeliveryError
from service.channels.email import EmailChannel, send_email
from service.channels.smtp import SmtpTransport, parse_smtp_url
from service.config import Settings
from service.digest.render import render_digest_email, render_email
from service.models import Subscription
from tests.digest.test_render import digest as make_digest
from tests.digest.test_render import golden_digest, item
from tests.smtp_server import DROP, SmtpServer, free_port, self_signed_tls, smtp_server


def settings_for(url: str, **kw: object) -> Settings:
    return Settings(_env_file=None, smtp_url=SecretStr(url), smtp_rate_per_s=0, smtp_timeout_s=5, **kw)  # type: ignore[arg-type]


def subscription(address: str = "reader@example.org") -> Subscription:
    return Subscription(id=7, channel="email", address=address)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def channel(smtp: SmtpServer) -> Iterator[EmailChannel]:
    ch = EmailChannel(settings_for(smtp.url, smtp_from="Päperboy Digest <digest@paperboy.example>"))
    yield ch
    ch.close()


def test_a_digest_arrives_as_multipart_alternative_with_list_headers(
    smtp: SmtpServer, channel: EmailChannel
) -> None:
    message_id = channel.send(subscription(), golden_digest())
    [received] = smtp.messages
    assert received.mail_from == "digest@paperboy.example"
    assert received.rcpt_tos == ["reader@example.org"]
    msg = received.message
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["Subject"] == "3 new papers on sparse attention · Mon 23 Nov"
    assert b"=?utf-8?" in received.data.split(b"\r\n\r\n", 1)[0]  # RFC 2047 on the wire
    assert msg["From"].addresses[0].display_name == "Päperboy Digest"
    assert msg["To"] == "reader@example.org"
    assert msg["Message-ID"] == message_id == "<digest.7.2026-11-23@paperboy.example>"
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (v.strip().strip("<>") for v in msg["List-Unsubscribe"].split(","))
    assert https == "https://paperboy.example/unsubscribe/U-token"
    assert mailto == "mailto:unsubscribe@paperboy.localhost?subject=unsubscribe%20U-token"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "https://paperboy.example/feedback/N2" in text and "https://paperboy.example/feedback/N2" in html
    assert "Speculative decoding &amp; friends: a &lt;survey&gt;" in html
    rendered = render_digest_email(golden_digest(), recipient="reader@example.org")
    assert (text.replace("\r\n", "\n"), html.replace("\r\n", "\n")) == (rendered.text, rendered.html)
    assert "Ünïcödé titles" in text and "Ünïcödé titles" in html


def test_paper_text_cannot_add_headers(smtp: SmtpServer, channel: EmailChannel) -> None:
    evil = item(1, "Title\r\nBcc: victim@example.org\r\n\r\n<script>x</script>")
    channel.send(subscription(), make_digest([evil], topic="topic\r\nX-Injected: yes"))
    msg = smtp.messages[0].message
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert smtp.messages[0].rcpt_tos == ["reader@example.org"]
    assert msg["Subject"] == "1 new paper on topic X-Injected: yes · Mon 23 Nov"
    with pytest.raises(DeliveryError) as bad:
        channel.send(subscription("reader@example.org\r\nBcc: victim@example.org"), golden_digest())
    assert bad.value.permanent
    assert len(smtp.messages) == 1


def test_a_batch_reuses_one_connection(smtp: SmtpServer, channel: EmailChannel) -> None:
    for n in range(5):
        channel.send(subscription(f"reader{n}@example.org"), golden_digest())
    assert len(smtp.messages) == 5
    assert len(smtp.handler.sessions) == 1
    assert channel.transport.connections_opened == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("stage", "reply", "permanent"),
    [
        ("rcpt", "550 5.1.1 <reader@example.org>: no such user", True),
        ("data", "552 5.3.4 message too big", True),
        ("rcpt", "451 4.3.0 try again later", False),
        ("data", "451 4.7.1 greylisted", False),
        ("rcpt", "421 4.3.2 shutting down", False),
        ("mail", "421 4.3.2 too many connections", False),
        ("mail", "553 5.7.1 sender not allowed", False),  # the operator's configuration, not a bounce
    ],
)
def test_smtp_answers_are_classified(
    smtp: SmtpServer, channel: EmailChannel, stage: str, reply: str, permanent: bool
) -> None:
    smtp.handler.script(stage, reply)
    with pytest.raises(DeliveryError) as failure:
        channel.send(subscription(), golden_digest())
    assert failure.value.permanent is permanent
    assert reply.split()[0] in str(failure.value)
    assert smtp.messages == []
    channel.send(subscription(), golden_digest())  # the channel recovers for the next message
    assert len(smtp.messages) == 1


def test_a_connection_dropped_during_data_is_transient(smtp: SmtpServer, channel: EmailChannel) -> None:
    smtp.handler.script("data", DROP)
    with pytest.raises(DeliveryError) as failure:
        channel.send(subscription(), golden_digest())
    assert not failure.value.permanent
    assert "connection lost" in str(failure.value)
    channel.send(subscription(), golden_digest())
    assert len(smtp.messages) == 1
    assert len(smtp.handler.sessions) == 2


def test_an_idle_connection_closed_by_the_server_is_reopened(smtp: SmtpServer, channel: EmailChannel) -> None:
    channel.send(subscription(), golden_digest())
    smtp.handler.script("mail", DROP)  # the reused connection dies before anything is sent
    channel.send(subscription(), golden_digest())
    assert len(smtp.messages) == 2
    assert channel.transport.connections_opened == 2  # type: ignore[attr-defined]


def test_no_server_is_a_transient_failure() -> None:
    ch = EmailChannel(settings_for(f"smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(DeliveryError) as failure:
        ch.send(subscription(), golden_digest())
    assert not failure.value.permanent
    assert "cannot connect" in str(failure.value)


def test_starttls_with_login(tmp_path: Path) -> None:
    tls, cert = self_signed_tls(tmp_path)
    with smtp_server(tls=tls, credentials=("mailer", "s3cret/+")) as server:
        url = f"smtp://mailer:s3cret%2F%2B@127.0.0.1:{server.port}"
        ch = EmailChannel(settings_for(url, smtp_ca_file=cert))
        ch.send(subscription(), golden_digest())
        ch.close()
        assert len(server.messages) == 1
        wrong = EmailChannel(settings_for(f"smtp://mailer:nope@127.0.0.1:{server.port}", smtp_ca_file=cert))
        with pytest.raises(DeliveryError) as failure:
            wrong.send(subscription(), golden_digest())
        assert not failure.value.permanent and "login" in str(failure.value)
        assert "nope" not in str(failure.value)
        untrusted = EmailChannel(settings_for(url))  # the self-signed cert is not trusted by default
        with pytest.raises(DeliveryError):
            untrusted.send(subscription(), golden_digest())
        assert len(server.messages) == 1


def test_implicit_tls(tmp_path: Path) -> None:
    tls, cert = self_signed_tls(tmp_path)
    with smtp_server(tls=tls, implicit_tls=True) as server:
        assert server.url.startswith("smtps://")
        ch = EmailChannel(settings_for(server.url, smtp_ca_file=cert))
        ch.send(subscription(), golden_digest())
        ch.close()
        assert server.messages[0].message["Subject"].startswith("3 new papers")


def test_transactional_email(smtp: SmtpServer) -> None:
    rendered = render_email(
        "confirm", {"email": "new@example.org", "confirm_url": "https://p.example/confirm/T"}
    )
    message_id = send_email("new@example.org", rendered, settings=settings_for(smtp.url))
    msg = smtp.messages[0].message
    assert msg["Message-ID"] == message_id
    assert msg["Subject"] == "Confirm your paperboy subscription"
    assert "https://p.example/confirm/T" in msg.get_body(("plain",)).get_content()
    assert msg["List-Unsubscribe"] is None


def test_date_header_is_the_send_time(smtp: SmtpServer) -> None:
    at = dt.datetime(2026, 11, 23, 8, 0, 5, tzinfo=dt.UTC)
    ch = EmailChannel(settings_for(smtp.url), now=lambda: at)
    ch.send(subscription(), golden_digest())
    ch.close()
    assert parsedate_to_datetime(smtp.messages[0].message["Date"]) == at


def test_long_signed_links_stay_literal_in_list_unsubscribe(smtp: SmtpServer, channel: EmailChannel) -> None:
    token = "eyJzIjoxMjMsInN1YiI6NDU2LCJ4Ijp7fX0.ZzY3bw.Qm9ndXNTaWduYXR1cmVUaGF0SXNMb25nRW5vdWdoVG9Gb2xk" * 2
    url = f"https://paperboy.example/unsubscribe/{token}"
    d = golden_digest()
    d = type(d)(
        **{
            **d.__dict__,
            "links": type(d.links)(**{**d.links.__dict__, "unsubscribe": url, "unsubscribe_post": url}),
        }
    )
    channel.send(subscription(), d)
    raw = smtp.messages[0].data
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"List-Unsubscribe: <{url}>, <mailto:" in head  # one literal line, no =?utf-8?q? words
    msg = smtp.messages[0].message
    assert msg.defects == [] and all(part.defects == [] for part in msg.iter_parts())
    assert msg.get_body(("plain",)).get_content().endswith(f"Unsubscribe: {url}\r\n")  # wire CRLF
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "payload",
    [
        b"Subject: dots\r\n\r\n.starts a line\r\n..two\r\nmid . dot\r\n.\r\nend\r\n",
        b".first byte is a dot\r\n\r\nbody without a final line end",
    ],
)
def test_the_server_receives_exactly_the_bytes_handed_over(smtp: SmtpServer, payload: bytes) -> None:
    transport = SmtpTransport(parse_smtp_url(smtp.url), timeout=5)
    try:
        transport.send("digest@paperboy.example", "reader@example.org", payload, "<x@paperboy.example>")
        transport.send("digest@paperboy.example", "reader@example.org", payload, "<y@paperboy.example>")
    finally:
        transport.close()
    expected = payload if payload.endswith(b"\r\n") else payload + b"\r\n"
    assert [m.data for m in smtp.messages] == [expected, expected]
