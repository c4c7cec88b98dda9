"""Discord-, Teams- and Mattermost-like incoming webhooks on loopback, each checking the payload shape
and the platform's documented limits the way the platform would (400 for a bad payload). Can be told
to answer the next requests with a 429 (+ Retry-After), a 500, or a 404 (webhook deleted)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def discord_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if not content and not embeds:
        problems.append("empty message")
    if len(content) > 2000:
        problems.append(f"content of {len(content)} characters")
    if len(embeds) > 10:
        problems.append(f"{len(embeds)} embeds")
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        if len(title) > 256 or len(description) > 4096:
            problems.append("embed field too long")
        total += len(title) + len(description) + len(embed.get("footer", {}).get("text", ""))
    if total > 6000:
        problems.append(f"embeds of {total} characters")
    if body.get("allowed_mentions") != {"parse": []}:
        problems.append("mentions allowed")
    return problems


def teams_problems(body: dict[str, Any], raw: bytes) -> list[str]:
    problems = []
    if len(raw) > 28 * 1024:
        problems.append(f"payload of {len(raw)} bytes")
    attachments = body.get("attachments") or []
    if body.get("type") != "message" or len(attachments) != 1:
        problems.append("not a message with one attachment")
        return problems
    card = attachments[0]
    if card.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("not an adaptive card")
    content = card.get("content") or {}
    if content.get("type") != "AdaptiveCard" or not content.get("body"):
        problems.append("card without body")
    if any(block.get("type") != "TextBlock" for block in content.get("body", [])):
        problems.append("unknown block")
    return problems


def mattermost_problems(body: dict[str, Any]) -> list[str]:
    text = body.get("text") or ""
    problems = [] if text else ["empty text"]
    if len(text) > 16383:
        problems.append(f"text of {len(text)} characters")
    return problems


@dataclass
class FakeWebhooks:
    url: str = ""
    received: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"discord": [], "teams": [], "mattermost": []}
    )
    answers: deque[tuple[int, float | None]] = field(default_factory=deque)
    rejected: list[str] = field(default_factory=list)

    def hook(self, platform: str) -> str:
        return f"{self.url}/{platform}/hook-secret-123"

    def answer_next(self, status: int, retry_after: float | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.answers.append((status, retry_after))


def _handler(state: FakeWebhooks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            platform = self.path.strip("/").split("/")[0]
            if state.answers:
                status, retry_after = state.answers.popleft()
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                payload = json.dumps({"retry_after": retry_after or 0}).encode() if status == 429 else b""
                self._reply(status, payload, headers)
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._reply(400, b"not json")
                return
            if platform == "discord":
                problems = discord_problems(body)
            elif platform == "teams":
                problems = teams_problems(body, raw)
            elif platform == "mattermost":
                problems = mattermost_problems(body)
            else:
                self._reply(404)
                return
            if problems:
                state.rejected.append(f"{platform}: {problems}")
                self._reply(400, "; ".join(problems).encode())
                return
            state.received[platform].append(body)
            self._reply(204 if platform == "discord" else 200, b"" if platform == "discord" else b"ok")

    return Handler


@contextmanager
def fake_webhooks() -> Iterator[FakeWebhooks]:
    state = FakeWebhooks()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
