"""Request size limits, and the admin token checked before a byte of an admin request is read.

The limits are FastAPI's own `max_body_size` (Starlette's RequestBodyLimitMiddleware), counted while
the body streams, so a chunked body that declares no length is cut off at the limit too."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

KB = 1024
# Forms and Slack requests are small: the largest preferences form (20 interests of 2,000
# characters) fits with room to spare. The admin API takes JSON objects of a few fields.
FORM_MAX_BYTES = 512 * KB
SLACK_MAX_BYTES = 512 * KB
ADMIN_MAX_BYTES = 1024 * KB
ADMIN_PREFIX = "/api/admin"

AdminCheck = Callable[[str | None], "tuple[int, str] | None"]


class AdminGate:
    """Answers an admin API request without a valid token before the app reads its body (pure ASGI:
    FastAPI resolves a router's dependencies only after parsing the body)."""

    def __init__(self, app: ASGIApp, *, admin_refusal: AdminCheck) -> None:
        self.app = app
        self.admin_refusal = admin_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            authorization = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), None)
            refusal = self.admin_refusal(authorization.decode("latin-1") if authorization else None)
            if refusal is not None:
                status, detail = refusal
                body = json.dumps({"detail": detail}).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The body was never read: the connection cannot carry another request.
                    (b"connection", b"close"),
                ]
                if status == 401:
                    headers.append((b"www-authenticate", b"Bearer"))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
