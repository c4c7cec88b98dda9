"""A loopback SMTP sink that writes down every message it accepts: when, its Message-ID, its recipients.

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c counting_sink.CountingSink LOG   (with bench/ on PYTHONPATH)

One line per accepted message, `<unix time> <Message-ID> <recipients>`, written before the server
answers 250, so the last line's time is when the last message was accepted. `read_log` turns the file
into what the scale benchmark checks: how many, how many distinct Message-IDs, when the last came.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from argparse import ArgumentParser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingSink:
    """aiosmtpd handler: accept everything, one log line per message."""

    def __init__(self, log: str) -> None:
        self.out = open(log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (open for the server's life)

    @classmethod
    def from_cli(cls, parser: ArgumentParser, *args: str) -> CountingSink:
        if len(args) != 1:
            parser.error("CountingSink takes one argument: the log file")
        return cls(args[0])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "replace")
        headers = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(headers)
        message_id = found.group(1).decode("ascii", "replace") if found else "-"
        self.out.write(f"{time.time():.6f} {message_id} {','.join(envelope.rcpt_tos)}\n")
        return "250 Message accepted for delivery"


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
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "counting_sink.CountingSink",
            str(log),
        ],
        env=env,
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
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the counting SMTP sink did not start")
