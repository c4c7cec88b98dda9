"""bench/counting_sink.py: a real SMTP server that scale_bench trusts to count what was delivered."""

from __future__ import annotations

import asyncio
import smtplib
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import counting_sink


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data

    def close(self) -> None:
        self.closed = True


class _Keeping(counting_sink.SinkProtocol):
    def __init__(self, out: object) -> None:
        super().__init__(out)  # type: ignore[arg-type]
        self.bodies: list[bytes] = []

    def _accept(self, body: bytes) -> bytes:
        self.bodies.append(body)
        return super()._accept(body)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


def _session(*chunks: bytes) -> tuple[_Keeping, _Transport, _Lines]:
    out = _Lines()
    protocol, transport = _Keeping(out), _Transport()
    protocol.connection_made(transport)
    for chunk in chunks:
        protocol.data_received(chunk)
    return protocol, transport, out


def test_smtplib_messages_are_logged_with_their_message_ids_and_recipients(tmp_path: Path) -> None:
    log = tmp_path / "sink.log"
    proc, port = counting_sink.start(log)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("pipelining") and client.has_extn("8bitmime")
            for n in range(3):
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = "paperboy@example.org", f"r{n}@example.org", "Digest"
                msg["Message-ID"] = f"<digest-{n}@paperboy>"
                msg.set_content(".a line that starts with a dot\n..and two\n.\nthe end\n")
                client.send_message(msg)
            client.rset()
            client.noop()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.helo()
            client.sendmail(
                "a@example.org", ["x@example.org", "y@example.org"], b"Subject: no id\r\n\r\nbody\r\n"
            )
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [line.split(" ") for line in log.read_text().splitlines()]
    assert [line[1:] for line in lines] == [
        ["<digest-0@paperboy>", "r0@example.org"],
        ["<digest-1@paperboy>", "r1@example.org"],
        ["<digest-2@paperboy>", "r2@example.org"],
        ["-", "x@example.org,y@example.org"],
    ]
    found = counting_sink.read_log(log)
    assert (found.messages, found.distinct_message_ids, found.missing_message_ids) == (4, 3, 1)


def test_dot_stuffed_lines_come_back_as_sent() -> None:
    body = b"Message-ID: <m@x>\r\n\r\n.one dot\r\n..two dots\r\nplain\r\n"
    stuffed = b"..one dot\r\n...two dots\r\nplain\r\n"
    protocol, transport, out = _session(
        b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n",
        b"Message-ID: <m@x>\r\n\r\n" + stuffed[:7],
        stuffed[7:] + b".\r\n",
    )
    assert protocol.bodies == [body]
    assert transport.sent.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Message accepted\r\n")
    assert out.lines[0].endswith(" <m@x> b@x\n")


def test_a_body_whose_first_line_is_stuffed_and_an_empty_body() -> None:
    protocol, _, _ = _session(
        b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n..first\r\n.\r\n"
        b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nQUIT\r\n"
    )
    assert protocol.bodies == [b".first\r\n", b""]


def test_pipelined_commands_are_answered_in_order_and_quit_closes() -> None:
    _, transport, out = _session(
        b"EHLO c\r\nMAIL FROM:<a@x> BODY=8BITMIME\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\n"
        b"DATA\r\nhi\r\n.\r\nQUIT\r\n"
    )
    replies = [line.split(b" ")[0].split(b"-")[0] for line in bytes(transport.sent).split(b"\r\n") if line]
    assert replies == [b"220"] + [b"250"] * 5 + [b"250", b"250", b"250", b"354", b"250", b"221"]
    assert transport.closed
    assert out.lines[0].endswith(" - b@x,c@x\n")


@pytest.mark.parametrize(
    ("line", "code"),
    [(b"DATA", b"503"), (b"RCPT TO:b@x", b"501"), (b"VRFY x", b"502"), (b"MAIL FROM:nobody", b"501")],
)
def test_commands_out_of_order_or_malformed_are_refused(line: bytes, code: bytes) -> None:
    _, transport, out = _session(b"HELO c\r\n" + line + b"\r\n")
    assert bytes(transport.sent).split(b"\r\n")[2].startswith(code)
    assert out.lines == []
