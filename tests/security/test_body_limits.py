"""Finding 1: a huge body is refused while it streams, and admin requests are authenticated first."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.security.conftest import ADMIN_TOKEN, LiveServer
from tests.security.http import send_chunked

MB = 1024 * 1024


def test_huge_chunked_bodies_are_refused_early_and_memory_stays_flat(start_server, database_url: str) -> None:  # type: ignore[no-untyped-def]
    if database_url.startswith("postgresql"):
        pytest.skip("about HTTP alone: the database plays no part")
    server: LiveServer = start_server()
    json = {"Content-Type": "application/json"}
    warm = send_chunked(server.url, "POST", "/api/admin/sources", json, 1024)
    assert warm.status == 401
    baseline = server.status_kb("VmHWM")
    fresh = str(int(time.time()))
    cases = [
        # (method, path, headers, expected status or statuses)
        ("PATCH", "/api/admin/subscriptions/1", json, 401),
        ("POST", "/api/admin/sources", json, 401),
        ("POST", "/api/admin/sources", {**json, "Authorization": "Bearer wrong"}, 401),
        ("PATCH", "/api/admin/subscriptions/1", {**json, "Authorization": f"Bearer {ADMIN_TOKEN}"}, 413),
        ("POST", "/slack/commands", {"Content-Type": "application/x-www-form-urlencoded"}, 401),
        (
            "POST",
            "/slack/commands",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": fresh,
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
            413,
        ),
        # A form field over 64 kB is refused by the form parser (400) before the body limit (413).
        ("POST", "/subscribe", {"Content-Type": "application/x-www-form-urlencoded"}, (400, 413)),
        ("POST", "/manage/some.token", {"Content-Type": "application/x-www-form-urlencoded"}, (400, 413)),
        ("POST", "/subscribe", {"Content-Type": "multipart/form-data; boundary=x"}, (400, 413)),
    ]
    for method, path, headers, status in cases:
        answer = send_chunked(server.url, method, path, headers, 50 * MB)
        expected = status if isinstance(status, tuple) else (status,)
        assert answer.status in expected, (method, path, answer.head)
        # The answer came while the body was still streaming: it was never read whole.
        assert answer.body_sent < 50 * MB, (method, path, answer.body_sent)
        assert "content-security-policy" in answer.head.lower(), (method, path)
    growth_mb = (server.status_kb("VmHWM") - baseline) / 1024
    assert growth_mb < 50, f"peak RSS grew by {growth_mb:.0f} MB"

    # A declared length over the limit is refused before reading.
    answer = httpx.post(
        server.url + "/subscribe",
        content=b"x" * (2 * MB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert "too large" in answer.text.lower()
