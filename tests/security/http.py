"""Raw HTTP for the tests that must control exactly how a body is sent (chunked, huge, slow)."""

from __future__ import annotations

import contextlib
import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    head: str
    body_sent: int  # bytes of the request body sent before the answer came (or all of it)


def send_chunked(
    url: str, method: str, path: str, headers: dict[str, str], total: int, chunk: int = 256 * 1024
) -> Answer:
    """Streams `total` bytes as a chunked body, stopping as soon as the server answers."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        data = b"{" + b"a" * (chunk - 1)
        sent = 0
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            except OSError:  # the server answered and closed while we were still sending
                break
            sent += len(data)
        else:
            with contextlib.suppress(OSError):
                sock.sendall(b"0\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            try:
                piece = sock.recv(65536)
            except OSError:
                break
            if not piece:
                break
            received += piece
        text = received.decode("latin-1")
        assert text.startswith("HTTP/1.1 "), f"no HTTP answer after {sent} bytes: {text[:200]!r}"
        return Answer(int(text.split()[1]), text.split("\r\n\r\n")[0], sent)
    finally:
        sock.close()
