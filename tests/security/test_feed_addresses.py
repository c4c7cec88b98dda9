"""Finding 11: feed sources on internal addresses are refused, on the address actually connected to,
after redirects too, unless FEED_ALLOW_PRIVATE_ADDRESSES is set."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service import feeds
from service.clock import ManualClock
from service.config import Settings
from service.sources import poll_all_sources
from tests.scheduler.feedserver import FeedServer, Reply
from tests.scheduler.test_sources import T0, add_source, jsonl, paper_count


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path / "var", http_retries=0, http_timeout_s=5, **kw)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer().running() as server:
        yield server


def test_a_loopback_feed_is_refused_before_any_request(
    committed_engine: Engine, feed: FeedServer, tmp_path: Path
) -> None:
    add_source(committed_engine, "internal", feed.script("/feed.jsonl", Reply(200, jsonl("A paper"))))
    [result] = poll_all_sources(committed_engine, _settings(tmp_path), ManualClock(T0))
    assert result.status == "failed"
    assert "127.0.0.1 is not a public address" in (result.error or "")
    assert "FEED_ALLOW_PRIVATE_ADDRESSES" in (result.error or "")
    assert feed.requests_to("/feed.jsonl") == []  # not one request reached it
    assert paper_count(committed_engine) == 0


def test_the_setting_allows_an_on_premise_feed(
    committed_engine: Engine, feed: FeedServer, tmp_path: Path
) -> None:
    add_source(committed_engine, "on-premise", feed.script("/feed.jsonl", Reply(200, jsonl("A paper"))))
    settings = _settings(tmp_path, feed_allow_private_addresses=True)
    [result] = poll_all_sources(committed_engine, settings, ManualClock(T0))
    assert result.status == "ingested", result.error
    assert paper_count(committed_engine) == 1


@pytest.fixture
def inner() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.2 (standing in for an internal host); records the paths asked of it."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            body = jsonl("Secret internal paper")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.2:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_to_an_internal_address_is_refused(
    committed_engine: Engine,
    feed: FeedServer,
    inner: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 127.0.0.1 plays the public feed, 127.0.0.2 the internal host it redirects to.
    internal = ipaddress.ip_address("127.0.0.2")
    monkeypatch.setattr(feeds, "forbidden_address", lambda ip: ip == internal)
    inner_url, seen = inner
    url = feed.script("/feed.jsonl", Reply(302, b"", headers={"Location": inner_url + "/latest/meta-data"}))
    add_source(committed_engine, "redirecting", url)
    [result] = poll_all_sources(committed_engine, _settings(tmp_path), ManualClock(T0))
    assert feed.requests_to("/feed.jsonl"), "the public hop was fetched"
    assert result.status == "failed" and "127.0.0.2 is not a public address" in (result.error or "")
    assert seen == []
    assert paper_count(committed_engine) == 0
