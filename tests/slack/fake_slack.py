"""A Slack-like HTTP server on loopback for tests and benchmarks: the real slack-sdk talks to it.

It serves `chat.postMessage` and `auth.test` under /api/ (checking the Bearer token as Slack does:
not_authed, invalid_auth, token_revoked) and incoming webhooks under /services/. For the installable
app it also serves the OAuth v2 authorize page (/oauth/v2/authorize: approves at once and redirects
back with a code), `oauth.v2.access` (client id and secret by HTTP Basic, single-use codes),
`views.open/update/publish`, `chat.unfurl`, `chat.postEphemeral` and `users.conversations`, each
recorded; `event_callback` and `signed_headers` build the Events API requests Slack would send. Every accepted
message is recorded with the ts it was given. It can be told to answer the next requests with a
429 and a Retry-After, an HTTP 500, a Slack error code, or by dropping the connection; to refuse a
channel with an error code every time; and to enforce a per-channel rate limit itself (429 when a
channel gets messages faster than allowed), counting the violations.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from slack_sdk.signature import SignatureVerifier

BOT_TOKEN = "xoxb-test-0123456789-abcdefghijkl"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-slack-client-secret"


@dataclass(frozen=True)
class Answer:
    """A scripted answer: HTTP status, a Slack error code, Retry-After seconds, or a dropped connection."""

    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    drop: bool = False


@dataclass
class Posted:
    """One message Slack accepted."""

    kind: str  # "bot" | "webhook"
    channel: str  # channel id, or the webhook's name
    payload: dict[str, Any]
    ts: str | None
    at: float  # time.monotonic() when accepted

    @property
    def thread_ts(self) -> str | None:
        value = self.payload.get("thread_ts")
        return str(value) if value is not None else None


@dataclass
class FakeSlack:
    """The server's state; start() serves it on 127.0.0.1 and a free port."""

    tokens: set[str] = field(default_factory=lambda: {BOT_TOKEN})
    revoked: set[str] = field(default_factory=set)
    rate_interval: float = 0.0  # > 0: at most one message per this many seconds to one channel
    rate_tolerance: float = 0.02  # clock jitter between client and server forgiven
    posted: list[Posted] = field(default_factory=list)
    requests: int = 0  # every request, answered or not
    rate_violations: int = 0
    channel_errors: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, str] = field(default_factory=dict)  # path -> webhook name
    responses: list[dict[str, Any]] = field(default_factory=list)  # posted to a response_url
    # The installable app: who installs it, the tokens issued, and what was called with them
    install_team: dict[str, str] = field(default_factory=lambda: {"id": "T0002", "name": "Acme Research"})
    install_enterprise: dict[str, str] | None = None  # {"id": "E0001", "name": ...}: an org-wide install
    token_teams: dict[str, str] = field(default_factory=lambda: {BOT_TOKEN: "T0001"})
    codes: dict[str, str] = field(default_factory=dict)  # code -> redirect_uri
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    views: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, payload)
    unfurls: list[dict[str, Any]] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    memberships: dict[str, list[str]] = field(default_factory=dict)  # user id -> channel ids
    _script: deque[Answer | None] = field(default_factory=deque)
    _last_post: dict[str, float] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- control --------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        server.request_queue_size = 256
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None, "the fake Slack server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    @property
    def response_url(self) -> str:
        return self.base + "/actions/T0001/1234/" + secrets.token_urlsafe(8)

    def webhook(self, name: str) -> str:
        """A new incoming-webhook URL posting as `name`."""
        path = f"/services/T0001/B{len(self.hooks) + 1:04d}/{secrets.token_urlsafe(18)}"
        with self._lock:
            self.hooks[path] = name
        return self.base + path

    def script(self, *answers: Answer | None) -> None:
        """Answer the next requests with these, in order (None: normally), then normally again."""
        with self._lock:
            self._script.extend(answers)

    def messages(self, channel: str | None = None) -> list[Posted]:
        with self._lock:
            return [p for p in self.posted if channel is None or p.channel == channel]

    # --- behaviour ------------------------------------------------------------------------------

    def next_scripted(self) -> Answer | None:
        with self._lock:
            self.requests += 1
            return self._script.popleft() if self._script else None

    def auth(self, header: str | None) -> str | None:
        """The error code for this Authorization header, or None when the token is good."""
        if not header or not header.startswith("Bearer "):
            return "not_authed"
        token = header.removeprefix("Bearer ").strip()
        if token in self.revoked:
            return "token_revoked"
        return None if token in self.tokens else "invalid_auth"

    def accept(self, kind: str, channel: str, payload: dict[str, Any]) -> tuple[Posted | None, float]:
        """Record the message, or (None, wait) when it breaks the per-channel rate limit."""
        with self._lock:
            now = time.monotonic()
            last = self._last_post.get(channel)
            if self.rate_interval > 0 and last is not None:
                early = last + self.rate_interval - now
                if early > self.rate_tolerance:
                    self.rate_violations += 1
                    return None, early
            self._last_post[channel] = now
            ts = f"{1_700_000_000 + next(self._ts)}.000100" if kind == "bot" else None
            posted = Posted(kind, channel, payload, ts, now)
            self.posted.append(posted)
            return posted, 0.0


def _handler(state: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the records
            pass

        def _body(self) -> dict[str, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            if "json" in (self.headers.get("Content-Type") or ""):
                data = json.loads(raw or "{}")
                return data if isinstance(data, dict) else {}
            return dict(parse_qsl(raw))

        def _send(
            self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data), "application/json; charset=utf-8", headers)

        def _scripted(self, webhook: bool) -> bool:
            """Play the next scripted answer, if any; True when it answered the request."""
            answer = state.next_scripted()
            if answer is None:
                return False
            if answer.drop:
                self.close_connection = True
                self.connection.close()
                return True
            headers = {"Retry-After": f"{answer.retry_after:g}"} if answer.retry_after is not None else {}
            code = answer.error or ("ratelimited" if answer.status == 429 else "internal_error")
            if webhook or answer.status >= 500:
                body = code if answer.status < 500 else "<html>Internal Server Error</html>"
                self._send(answer.status, body, "text/html", headers)
            else:
                self._json(answer.status, {"ok": False, "error": code}, headers)
            return True

        def do_GET(self) -> None:
            if self.path.startswith("/oauth/v2/authorize"):
                self._authorize()
            elif self.path == "/_stats":  # for a benchmark running the server in another process
                with state._lock:
                    kinds = [p.kind for p in state.posted]
                    stats = {
                        "requests": state.requests,
                        "posted": len(kinds),
                        "threads": sum(1 for p in state.posted if p.thread_ts),
                        "rate_violations": state.rate_violations,
                        "channels": len({p.channel for p in state.posted}),
                        "views_opened": sum(1 for method, _ in state.views if method == "views.open"),
                    }
                self._json(200, stats)
            else:
                self._json(404, {"ok": False, "error": "unknown_method"})

        def do_POST(self) -> None:
            if self.path.startswith("/services/"):
                self._webhook()
            elif self.path.startswith("/actions/"):  # a response_url from an interaction payload
                with state._lock:
                    state.responses.append(self._body())
                self._send(200, "ok", "text/html")
            elif self.path == "/api/chat.postMessage":
                self._post_message()
            elif self.path == "/api/auth.test":
                error = state.auth(self.headers.get("Authorization"))
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                team = state.token_teams.get(token, "T0001")
                answer = {"ok": True, "team_id": team, "bot_id": "B" + team[1:], "user_id": "UBOT"}
                self._json(200, {"ok": False, "error": error} if error else answer)
            elif self.path == "/api/oauth.v2.access":
                self._oauth_access()
            elif self.path in API_METHODS:
                self._app_call(self.path.removeprefix("/api/"))
            else:
                self._json(404, {"ok": False, "error": "unknown_method"})

        def _authorize(self) -> None:
            # Slack's consent screen, approved at once: back to redirect_uri with a code and the state.
            query = dict(parse_qsl(urlsplit(self.path).query))
            with state._lock:
                state.authorize_requests.append(query)
            redirect = query.get("redirect_uri", "")
            if query.get("client_id") != CLIENT_ID or not redirect.startswith(("http://", "https://")):
                self._send(400, "invalid_client_id or redirect_uri", "text/html")
                return
            code = secrets.token_hex(8)
            with state._lock:
                state.codes[code] = redirect
            target = redirect + "?" + urlencode({"code": code, "state": query.get("state", "")})
            self._send(302, "", "text/html", {"Location": target})

        def _oauth_access(self) -> None:
            payload = self._body()
            basic = (self.headers.get("Authorization") or "").removeprefix("Basic ")
            try:
                client_id, _, secret = base64.b64decode(basic).decode().partition(":")
            except ValueError:
                client_id, secret = "", ""
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                self._json(200, {"ok": False, "error": "invalid_client_id"})
                return
            with state._lock:
                redirect = state.codes.pop(str(payload.get("code")), None)
            if redirect is None or redirect != payload.get("redirect_uri"):
                self._json(
                    200, {"ok": False, "error": "invalid_code" if redirect is None else "bad_redirect_uri"}
                )
                return
            team, enterprise = state.install_team, state.install_enterprise
            token = "xoxb-" + secrets.token_hex(12)
            with state._lock:
                state.tokens.add(token)
                state.token_teams[token] = team["id"]
            self._json(
                200,
                {
                    "ok": True,
                    "app_id": "A0PAPERBOY",
                    "authed_user": {"id": "U0INSTALLER"},
                    "scope": "commands,chat:write,links:read,links:write,channels:read,groups:read",
                    "token_type": "bot",
                    "access_token": token,
                    "bot_user_id": "U0PAPERBOY",
                    "team": None if enterprise and not team else team,
                    "enterprise": enterprise,
                    "is_enterprise_install": bool(enterprise and not team),
                },
            )

        def _app_call(self, method: str) -> None:
            payload = self._body()
            if self._scripted(webhook=False):
                return
            error = state.auth(self.headers.get("Authorization"))
            if error:
                self._json(200, {"ok": False, "error": error})
                return
            for key in ("view", "unfurls", "blocks"):  # slack_sdk sends these JSON-encoded in forms
                if isinstance(payload.get(key), str):
                    payload[key] = json.loads(payload[key])
            with state._lock:
                if method.startswith("views."):
                    if method == "views.open" and not payload.get("trigger_id"):
                        self._json(200, {"ok": False, "error": "invalid_trigger_id"})
                        return
                    state.views.append((method, payload))
                elif method == "chat.unfurl":
                    state.unfurls.append(payload)
                elif method == "chat.postEphemeral":
                    state.ephemerals.append(payload)
            if method == "users.conversations":
                channels = state.memberships.get(str(payload.get("user") or ""), [])
                answer = {"channels": [{"id": c} for c in channels], "response_metadata": {"next_cursor": ""}}
                self._json(200, {"ok": True, **answer})
            elif method.startswith("views."):
                view = {"id": "V" + secrets.token_hex(4).upper(), **(payload.get("view") or {})}
                self._json(200, {"ok": True, "view": view})
            else:
                self._json(200, {"ok": True, "message_ts": "1700000000.000200"})

        def _post_message(self) -> None:
            payload = self._body()
            if self._scripted(webhook=False):
                return
            error = state.auth(self.headers.get("Authorization"))
            channel = str(payload.get("channel") or "")
            error = error or state.channel_errors.get(channel) or _invalid(payload)
            if error:
                self._json(200, {"ok": False, "error": error})
                return
            posted, wait = state.accept("bot", channel, payload)
            if posted is None:
                retry = {"Retry-After": str(max(1, math.ceil(wait)))}
                self._json(429, {"ok": False, "error": "ratelimited"}, retry)
                return
            message = {"type": "message", "text": payload.get("text"), "ts": posted.ts}
            self._json(200, {"ok": True, "channel": channel, "ts": posted.ts, "message": message})

        def _webhook(self) -> None:
            payload = self._body()
            if self._scripted(webhook=True):
                return
            name = state.hooks.get(self.path)
            if name is None:
                self._send(404, "no_service", "text/html")
                return
            error = state.channel_errors.get(name) or _invalid(payload)
            if error:
                self._send(404 if error.endswith("not_found") else 400, error, "text/html")
                return
            posted, wait = state.accept("webhook", name, payload)
            if posted is None:
                self._send(429, "rate_limited", "text/html", {"Retry-After": str(max(1, math.ceil(wait)))})
                return
            self._send(200, "ok", "text/html")

    return Handler


API_METHODS = frozenset(
    f"/api/{m}"
    for m in (
        "views.open",
        "views.update",
        "views.publish",
        "chat.unfurl",
        "chat.postEphemeral",
        "users.conversations",
    )
)


def event_callback(event: dict[str, Any], team_id: str = "T0001", **extra: Any) -> str:
    """The JSON body of an Events API callback, as Slack sends it."""
    body = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "api_app_id": "A0PAPERBOY",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "enterprise_id": None, "is_enterprise_install": False}],
        **extra,
    }
    return json.dumps(body)


def signed_headers(body: str, secret: str, content_type: str = "application/json") -> dict[str, str]:
    """The headers Slack signs a request with (X-Slack-Signature over v0:timestamp:body)."""
    ts = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature or "",
        "Content-Type": content_type,
    }


def _invalid(payload: dict[str, Any]) -> str | None:
    """The error Slack gives a message it refuses outright (the tests check blocks more closely)."""
    if not payload.get("text") and not payload.get("blocks"):
        return "no_text"
    blocks = payload.get("blocks")
    if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50):
        return "invalid_blocks"
    if len(str(payload.get("text") or "")) > 40_000:
        return "msg_too_long"
    return None


def main() -> None:
    """Serve until standard input closes: `python -m tests.slack.fake_slack [rate_interval] [tolerance]`."""
    import sys

    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    tolerance = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02
    server = FakeSlack(rate_interval=interval, rate_tolerance=tolerance).start()
    print(server.base, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
