"""Feeds: a private Atom / RSS 2.0 feed per subscription, parsed back with feedparser; conditional
GET; 410 once unsubscribed or reset; feed-only subscriptions with exactly-once bookkeeping (SQLite
and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from urllib.parse import urlsplit

import feedparser
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.config import Settings
from service.db import session_scope
from service.delivery import deliver
from service.links import feed_url, manage_url
from service.models import Delivery, Subscription
from tests.digest.helpers import add_paper, add_subscription, keyword_ranker

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def _deliver(engine: Engine, sub_id: int, period: str, settings: Settings, now: dt.datetime) -> str:
    return deliver(
        engine,
        sub_id,
        period,
        now=now,
        settings=settings,
        instance="t",
        ranker=keyword_ranker,
        rng=random.Random(1),
    ).status


def _feed_only(engine: Engine) -> tuple[int, int | None]:
    with session_scope(engine) as session:
        add_paper(session, "arxiv:f1", "KV cache eviction", "kv cache", seen=NOW - dt.timedelta(hours=5))
        add_paper(session, "arxiv:f2", "KV cache quantization", "kv cache", seen=NOW - dt.timedelta(hours=4))
        sub_id = add_subscription(session, "ada@example.org", "kv cache", channel="feed")
        owner = session.get(Subscription, sub_id).subscriber_id  # type: ignore[union-attr]
    return sub_id, owner


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_feed_only_subscription_fills_its_feed_once(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    sub_id, owner = _feed_only(committed_engine)
    atom = _path(feed_url(owner, sub_id, "atom", web_settings))
    empty = feedparser.parse(client.get(atom).content)
    assert not empty.bozo and empty.entries == []

    assert _deliver(committed_engine, sub_id, "d1", web_settings, NOW) == "sent"
    with session_scope(committed_engine) as session:
        add_paper(session, "arxiv:f3", "KV cache offloading", "kv cache", seen=NOW + dt.timedelta(minutes=10))
    assert _deliver(committed_engine, sub_id, "d2", web_settings, NOW + dt.timedelta(hours=1)) == "sent"
    assert _deliver(committed_engine, sub_id, "d3", web_settings, NOW + dt.timedelta(hours=2)) == "empty"
    assert _deliver(committed_engine, sub_id, "d1", web_settings, NOW + dt.timedelta(hours=2)) == "skipped"
    assert not list(web_settings.resolved_outbox_dir.glob("*.eml"))  # feed-only: no email

    response = client.get(atom)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    titles = [e.title for e in parsed.entries]
    assert titles[0] == "KV cache offloading"  # newest first
    assert sorted(titles) == [
        "KV cache eviction",
        "KV cache offloading",
        "KV cache quantization",
    ]  # once each
    assert "matched 'kv cache'" in parsed.entries[0].summary
    assert parsed.entries[0].link == "https://arxiv.org/abs/f3"

    rss = feedparser.parse(client.get(_path(feed_url(owner, sub_id, "rss", web_settings))).content)
    assert not rss.bozo and rss.version == "rss20" and len(rss.entries) == 3


def test_conditional_get_and_cache_headers(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    sub_id, owner = _feed_only(committed_engine)
    assert _deliver(committed_engine, sub_id, "d1", web_settings, NOW) == "sent"
    atom = _path(feed_url(owner, sub_id, "atom", web_settings))
    first = client.get(atom)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["cache-control"] == "private, max-age=900"
    assert client.get(atom, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(atom, headers={"If-Modified-Since": modified}).status_code == 304
    with session_scope(committed_engine) as session:
        add_paper(session, "arxiv:f9", "KV cache news", "kv cache", seen=NOW + dt.timedelta(minutes=5))
    assert _deliver(committed_engine, sub_id, "d2", web_settings, NOW + dt.timedelta(hours=1)) == "sent"
    fresh = client.get(atom, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag


def test_an_ended_or_reset_feed_is_gone(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    with session_scope(committed_engine) as session:
        sub_id = add_subscription(session, "bob@example.org", "kv cache")  # an email subscription's feed
        owner = session.get(Subscription, sub_id).subscriber_id  # type: ignore[union-attr]
    old = _path(feed_url(owner, sub_id, "atom", web_settings))
    assert client.get(old).status_code == 200
    assert client.get(old.replace(".atom", ".json")).status_code == 404
    assert client.get(old[:-8] + "xx.atom").status_code == 404  # forged

    manage = _path(manage_url(owner, sub_id, web_settings))  # type: ignore[arg-type]
    page = client.get(manage)
    assert "Atom feed" in page.text and "/feed/" in page.text
    time.sleep(1.1)  # links carry whole seconds: the old one must be older than the reset
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert client.post(manage + "/feed-reset", data={"csrf_token": token}).status_code == 200
    assert client.get(old).status_code == 410
    new = re.search(r'href="http://testserver(/feed/[^"]+\.atom)"', client.get(manage).text)
    assert new and client.get(new.group(1)).status_code == 200

    from service.subscription import unsubscribe

    with session_scope(committed_engine) as session:
        unsubscribe(session, sub_id)
    assert client.get(new.group(1)).status_code == 410


def test_the_cli_makes_feed_only_subscriptions(cli_env: Engine) -> None:
    from tests.cli import run_cli

    code, out = run_cli("feed", "subscribe", "ada@example.org", "-i", "kv cache")
    assert code == 0 and "feed for ada@example.org" in out and "/feed/" in out and ".atom" in out
    with session_scope(cli_env) as session:
        sub = session.scalars(select(Subscription)).one()
        assert sub.channel == "feed" and sub.status == "active"
        assert session.scalars(select(Delivery)).all() == []
    code, out = run_cli("feed", "url", str(sub.id), "--rss", "--reset")
    assert code == 0 and out.strip().endswith(".rss")


def test_the_admin_api_gives_the_feed_links(client: TestClient, committed_engine: Engine) -> None:
    from tests.web.helpers import ADMIN_TOKEN

    sub_id, _ = _feed_only(committed_engine)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    links = client.get(f"/api/admin/subscriptions/{sub_id}/feed", headers=auth).json()
    assert links["atom"].endswith(".atom") and links["rss"].endswith(".rss") and not links["gone"]
    parsed = feedparser.parse(client.get(_path(links["rss"])).content)
    assert not parsed.bozo
