"""The digest message paperboy writes itself reads back as the email package's own message would:
same headers, same decoded text and HTML parts, lines within the RFC limits."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest

from service.channels.email import POLICY, EmailChannel, Outgoing
from service.config import Settings
from service.digest.model import Digest, Segment
from service.digest.render import render_digest_email
from service.models import Subscription
from tests.digest.test_render import digest, golden_digest, item

NOW = dt.datetime(2026, 11, 23, 7, 0, 5, tzinfo=dt.UTC)
LONG = " ".join(f"word{n}=value{n}" for n in range(120))  # one paragraph: QP soft breaks, '=' escaped


def digests() -> list[Digest]:
    return [
        golden_digest(),
        digest(
            [
                item(
                    1,
                    r"$\mathcal{O}(n \log n)$ attention: \emph{linear}, 100% <faster> & \"better\"",
                    authors=["Jürgen Schmidhuber", "Søren Kierkegaard", "李小龙", "Ólafur Arnalds"],
                    why="",
                    snippet=[Segment(LONG), Segment(" sparse ", hit=True), Segment(".starts with a dot")],
                ),
                item(
                    2, "Ünïcödé — “quoted” · ellipsis…", why="", tldr="Ein kurzer Satz über Aufmerksamkeit."
                ),
                item(3, "x" * 300, url=None, code_url=None, why="matched " + "'term' " * 60),
            ],
            topic="Ünïcödé attention",
        ),
        digest([], period="2026-W48", topic="nothing new"),
    ]


def reference(message: Outgoing, text: str, html: str, source: EmailMessage) -> EmailMessage:
    """The same message through the email package's generator (the path paperboy left)."""
    msg = EmailMessage(policy=POLICY)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"):
        msg[name] = source[name]
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        msg[name] = source[name]
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("number", range(3))
def test_the_written_message_reads_back_as_the_email_packages_own(number: int) -> None:
    settings = Settings(_env_file=None, smtp_from="Päperboy Digest <digest@paperboy.example>")  # type: ignore[call-arg]
    channel = EmailChannel(settings, now=lambda: NOW)
    subject = digests()[number]
    rendered = render_digest_email(subject, recipient="reader@example.org")
    message = channel.digest_message(
        Subscription(id=7, channel="email", address="reader@example.org"), subject
    )
    ours = message.parsed()
    theirs = reference(message, rendered.text, rendered.html, ours)

    names = ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "List-Unsubscribe", "List-Id"]
    assert [str(ours[n]) for n in names] == [str(theirs[n]) for n in names]
    assert ours["Subject"] == rendered.subject
    assert ours.get_content_type() == theirs.get_content_type() == "multipart/alternative"
    ours_parts, theirs_parts = list(ours.iter_parts()), list(theirs.iter_parts())
    assert [p.get_content_type() for p in ours_parts] == ["text/plain", "text/html"]
    assert [p.get_content_type() for p in theirs_parts] == ["text/plain", "text/html"]
    for mine, stock, original in zip(ours_parts, theirs_parts, (rendered.text, rendered.html), strict=True):
        assert isinstance(mine, EmailMessage) and isinstance(stock, EmailMessage)
        assert mine.get_content_charset() == "utf-8"
        assert mine["Content-Transfer-Encoding"] == "quoted-printable"
        # The email package ends a part with a line end the rendered HTML does not have.
        assert mine.get_content().rstrip("\r\n") == stock.get_content().rstrip("\r\n")
        decoded = mine.get_content().replace("\r\n", "\n")
        assert decoded.rstrip("\n") == original.replace("\r\n", "\n").rstrip("\n")
    lines = message.data.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    body = message.data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # QP soft breaks
    assert b"\n" not in message.data.replace(b"\r\n", b"")  # CRLF only
