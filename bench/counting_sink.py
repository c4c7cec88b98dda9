"""A loopback SMTP sink that writes down every message it accepts: when, its Message-ID, its recipients.

    python bench/counting_sink.py LOG [--port PORT]     (serves until killed; `start()` runs it for you)
    python bench/counting_sink.py --check [--messages 2000]   (self-check, and its CPU per message)

One line per accepted message, `<unix time> <Message-ID> <recipients>`, written before the server
answers 250, so the last line's time is when the last message was accepted. `read_log` turns the file
into what the scale benchmark checks: how many, how many distinct Message-IDs, when the last came.

The server is an asyncio Protocol that speaks only what a sink needs (EHLO/HELO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT; PIPELINING and 8BITMIME advertised): it runs beside the workers it
measures on the same two cores, and aiosmtpd's full state machine cost 3.3 ms of CPU per message.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentParser
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import IO

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(rb"^[A-Za-z ]+:\s*<([^>]*)>")
_END = b"\r\n.\r\n"
_MAX_LINE = 4096  # a command line longer than this is an error, not a reason to buffer forever
_EHLO = b"250-paperboy-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 67108864\r\n250 SMTPUTF8\r\n"


def message_id_of(content: bytes) -> str:
    """The Message-ID header of a message (its headers only), '-' when it has none."""
    found = _MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
    return found.group(1).decode("ascii", "replace") if found else "-"


def unstuff(data: bytes) -> bytes:
    """A DATA body as the client meant it: a line that starts with '.' was sent with one more."""
    # The body arrives with a CRLF put in front (see SinkProtocol), so the first line is a line too.
    return data.replace(b"\r\n..", b"\r\n.")


class SinkProtocol(asyncio.Protocol):
    """One SMTP session: commands answered in order (pipelined ones too), every message accepted."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0  # how much of a body has been searched for its end already
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 paperboy-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while self.buffer:
            if self.in_data:
                # The body is buffered behind a CRLF, so ".\r\n" on its first line ends it as well.
                end = self.buffer.find(_END, self.scanned)
                if end < 0:
                    self.scanned = max(0, len(self.buffer) - len(_END) + 1)
                    break
                self.scanned = 0
                body = unstuff(bytes(self.buffer[: end + 2]))[2:]  # its last CRLF is the body's
                del self.buffer[: end + len(_END)]
                self.in_data = False
                replies.append(self._accept(body))
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_LINE:
                    replies.append(b"500 5.5.2 Line too long\r\n")
                    self.buffer.clear()
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            reply = self._command(line)
            if reply is None:  # QUIT
                replies.append(b"221 2.0.0 Bye\r\n")
                self._write(replies)
                assert self.transport is not None
                self.transport.close()
                return
            replies.append(reply)
            if self.in_data:
                self.buffer[:0] = b"\r\n"
        self._write(replies)

    def _write(self, replies: list[bytes]) -> None:
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _command(self, line: bytes) -> bytes | None:
        verb = line[:4].upper()
        if verb == b"RCPT":
            found = _ADDRESS.match(line)
            if found is None:
                return b"501 5.5.4 Syntax: RCPT TO:<address>\r\n"
            self.recipients.append(found.group(1).decode("utf-8", "replace"))
            return b"250 OK\r\n"
        if verb == b"MAIL":
            if _ADDRESS.match(line) is None:
                return b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 Error: need RCPT command\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"EHLO":
            return _EHLO
        if verb == b"HELO":
            return b"250 paperboy-sink\r\n"
        if verb == b"RSET":
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"NOOP":
            return b"250 OK\r\n"
        if verb == b"QUIT":
            return None
        return b"502 5.5.2 Error: command not recognized\r\n"

    def _accept(self, body: bytes) -> bytes:
        # Written before the 250: the log's last line is when the last message was accepted.
        self.out.write(f"{time.time():.6f} {message_id_of(body)} {','.join(self.recipients)}\n")
        self.recipients = []
        return b"250 2.0.0 Message accepted\r\n"


async def serve(log: Path, port: int) -> None:
    with open(log, "a", buffering=1, encoding="utf-8") as out:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkProtocol(out), "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()


@dataclass(frozen=True)
class SinkLog:
    messages: int
    distinct_message_ids: int
    missing_message_ids: int
    recipients: int  # distinct recipient lists
    first_at: float | None
    last_at: float | None


def read_log(path: Path) -> SinkLog:
    ids: set[str] = set()
    recipients: set[str] = set()
    messages = missing = 0
    first = last = None
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            at, message_id, rcpt = line.split(" ", 2)
            messages += 1
            missing += message_id == "-"
            ids.add(message_id)
            recipients.add(rcpt)
            first = float(at) if first is None else min(first, float(at))
            last = float(at) if last is None else max(last, float(at))
    return SinkLog(messages, len(ids - {"-"}), missing, len(recipients), first, last)


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the benchmark dies (a crash must not leave it running)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The sink in its own process (it must not share a GIL with what it measures); its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(log), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the counting SMTP sink did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(messages: int) -> None:
    """Send `messages` digests-sized messages with smtplib (one connection), plus one whose lines
    start with '.'; verify the log; print the sink's CPU per message."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "sink.log"
        proc, port = start(log)
        try:
            body = "\n".join(f"line {n} of a digest-sized message, more or less" for n in range(300))
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.ehlo()
                assert client.has_extn("pipelining") and client.has_extn("8bitmime")
                cpu0 = cpu_seconds(proc.pid)
                for n in range(messages):
                    msg = EmailMessage()
                    msg["From"], msg["To"], msg["Subject"] = "a@example.org", f"r{n}@example.org", "digest"
                    msg["Message-ID"] = f"<check-{n}@paperboy>"
                    msg.set_content(body)
                    client.send_message(msg)
                cpu = cpu_seconds(proc.pid) - cpu0
                dotted = EmailMessage()
                dotted["From"], dotted["To"] = "a@example.org", "dots@example.org"
                dotted["Message-ID"] = "<dots@paperboy>"
                dotted.set_content(".starts with a dot\n..two\n.\nend\n")
                client.send_message(dotted)
        finally:
            proc.terminate()
            proc.wait(10)
        found = read_log(log)
        assert found.messages == messages + 1, found
        assert found.distinct_message_ids == messages + 1, found
        print(f"{messages} messages ok; sink CPU {1000 * cpu / messages:.3f} ms per message")


def main() -> None:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", nargs="?", type=Path)
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--check", action="store_true", help="self-check, and the sink's CPU per message")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    if args.check:
        check(args.messages)
    elif args.log is None:
        parser.error("the log file is required")
    else:
        asyncio.run(serve(args.log, args.port))


if __name__ == "__main__":
    main()
