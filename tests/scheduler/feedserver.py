"""A real HTTP server on loopback that plays a paper feed, scripted per test."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-body (the size-limit tests do) are expected, not errors to print:
    a traceback printed from a server thread lands in whatever test captures stderr next."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class Reply:
    """One scripted answer; `kind` picks a misbehaviour."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "normal"  # normal|slow|drop|endless|conditional
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """Answers each path from a queue of Replies (the last one repeats); records every request."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def script(self, path: str, *replies: Reply) -> str:
        with self._lock:
            self.replies[path] = list(replies)
        return self.url(path)

    def next_reply(self, path: str) -> Reply:
        with self._lock:
            queue = self.replies.get(path)
            if not queue:
                return Reply(404, b"not here")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    @contextmanager
    def running(self) -> Iterator[FeedServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                _answer(self, server, server.next_reply(self.path))

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        serve = self._httpd.serve_forever
        thread = threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()


def _answer(h: BaseHTTPRequestHandler, server: FeedServer, reply: Reply) -> None:
    if reply.kind == "conditional":
        etag = reply.headers.get("ETag")
        if etag and h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
    if reply.kind == "slow":
        time.sleep(reply.delay_s)
    h.send_response(reply.status)
    for name, value in reply.headers.items():
        h.send_header(name, value)
    if reply.kind == "endless":
        # No Content-Length: the body ends when the connection does; send until the client hangs up.
        h.send_header("Connection", "close")
        h.end_headers()
        _stream(h, server, 200 * 1024 * 1024)
        return
    h.send_header("Content-Length", str(len(reply.body)))
    h.end_headers()
    if reply.kind == "drop":
        h.wfile.write(reply.body[: len(reply.body) // 3])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)
        return
    h.wfile.write(reply.body)


def _stream(h: BaseHTTPRequestHandler, server: FeedServer, total: int) -> None:
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < total:
            h.wfile.write(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        server.bytes_sent[h.path] = sent
        h.close_connection = True
