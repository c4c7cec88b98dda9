"""Every digest has a home: the "View in browser" page of a delivered digest, and the archive of a
subscription's past digests with a search over the papers it was sent (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random
import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import service.web.archive as archive_pages
from service.channels.slack_blocks import digest_messages
from service.config import Settings
from service.db import session_scope
from service.delivery import deliver
from service.digest.compose import build_digest
from service.links import archive_url, digest_url, manage_url
from service.models import Delivery, DeliveryPaper
from service.tokens import default_max_age_s
from tests.digest.helpers import add_paper, add_subscription, keyword_ranker
from tests.web.helpers import link_in, outbox

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _seed(engine: Engine, email: str, titles: list[str], *, hours_ago: float = 3) -> int:
    with session_scope(engine) as session:
        sub_id = add_subscription(session, email, "kv cache")
        for n, title in enumerate(titles):
            add_paper(
                session,
                f"arxiv:{email}:{hours_ago}:{n}",
                title,
                f"We study {title.lower()} in depth.",
                seen=NOW - dt.timedelta(hours=hours_ago),
            )
    return sub_id


def _deliver(engine: Engine, sub_id: int, period: str, settings: Settings, now: dt.datetime = NOW) -> str:
    outcome = deliver(
        engine,
        sub_id,
        period,
        now=now,
        settings=settings,
        instance="test",
        ranker=keyword_ranker,
        rng=random.Random(1),
    )
    return outcome.status


def _path(url: str) -> str:
    return urlsplit(url).path


def test_the_view_in_browser_link_shows_the_digest_as_delivered(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    sub_id = _seed(committed_engine, "ada@example.org", ["KV cache eviction", "Paged KV cache"])
    assert _deliver(committed_engine, sub_id, "2026-11-23", web_settings) == "sent"
    [message] = outbox(web_settings)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    view = link_in(message, "/digest/")
    assert f"http://testserver{view}" in html and "View in browser" in html

    page = client.get(view)
    assert page.status_code == 200
    assert "KV cache eviction" in page.text and "Paged KV cache" in page.text
    assert "Why: matched &#39;kv cache&#39;" in page.text  # the recorded reason
    feedback = re.findall(r'href="http://testserver(/feedback/[^"]+)"', page.text)
    assert len(feedback) == 4  # relevant / not relevant for each paper
    assert client.get(feedback[0]).status_code == 200
    archive = re.search(r'href="(/archive/[^"]+)"', page.text)
    assert archive and client.get(archive.group(1)).status_code == 200


def test_a_digest_link_opens_only_a_delivered_digest_of_its_own_subscriber(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    ada = _seed(committed_engine, "ada@example.org", ["KV cache eviction"])
    bob = _seed(committed_engine, "bob@example.org", ["KV cache for bob"])
    assert _deliver(committed_engine, ada, "2026-11-23", web_settings) == "sent"
    with session_scope(committed_engine) as session:
        from service.models import Subscription

        ada_owner = session.get(Subscription, ada).subscriber_id  # type: ignore[union-attr]
        bob_owner = session.get(Subscription, bob).subscriber_id  # type: ignore[union-attr]
    # Not delivered yet: no page. Another subscriber's id in the token: no page. Forged: no page.
    assert client.get(_path(digest_url(ada_owner, ada, "2026-11-24", web_settings))).status_code == 404
    assert client.get(_path(digest_url(bob_owner, ada, "2026-11-23", web_settings))).status_code == 404
    good = _path(digest_url(ada_owner, ada, "2026-11-23", web_settings))
    assert client.get(good[:-3] + "xyz").status_code == 404
    manage = _path(manage_url(ada_owner, ada, web_settings)).replace("/manage/", "/digest/")
    assert client.get(manage).status_code == 404  # a manage token is not a digest token
    assert client.get(good).status_code == 200


def test_digest_and_archive_links_outlive_ordinary_links() -> None:
    settings = Settings(_env_file=None, token_max_age_days=30)  # type: ignore[call-arg]
    assert default_max_age_s("manage", settings) == 30 * 86400
    assert default_max_age_s("digest", settings) == settings.archive_link_max_age_days * 86400 > 30 * 86400
    assert default_max_age_s("archive", settings) == default_max_age_s("digest", settings)


def _record_digests(engine: Engine, sub_id: int, count: int) -> None:
    """`count` sent digests of one paper each, one a day, directly in the tables (fast paging)."""
    with session_scope(engine) as session:
        for n in range(count):
            day = NOW - dt.timedelta(days=count - n)
            paper = add_paper(session, f"arxiv:page:{n}", f"Paper number {n}", "abstract", seen=day)
            delivery = Delivery(
                subscription_id=sub_id,
                period=(day.date()).isoformat(),
                status="sent",
                sent_at=day,
                created_at=day,
            )
            session.add(delivery)
            session.flush()
            session.add(
                DeliveryPaper(
                    delivery_id=delivery.id,
                    subscription_id=sub_id,
                    paper_id=paper.id,
                    rank=1,
                    score=1.0,
                    reason={"why": f"reason {n}"},
                )
            )
        session.add(Delivery(subscription_id=sub_id, period="failed-one", status="failed"))


def test_the_archive_lists_past_digests_newest_first_with_paging(
    client: TestClient, committed_engine: Engine, web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub_id = _seed(committed_engine, "ada@example.org", [])
    _record_digests(committed_engine, sub_id, 7)
    monkeypatch.setattr(archive_pages, "PAGE_SIZE", 3)
    url = _path(archive_url(_owner(committed_engine, sub_id), sub_id, web_settings))

    first = client.get(url)
    assert first.status_code == 200
    assert "7 digests, newest first" in first.text  # the failed delivery is not in the archive
    titles = re.findall(r"Paper number (\d)", first.text)
    assert titles == ["6", "5", "4"]
    assert "Newer" not in first.text
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert re.findall(r"Paper number (\d)", second.text) == ["3", "2", "1"]
    third = client.get(url + "?page=3")
    assert re.findall(r"Paper number (\d)", third.text) == ["0"]
    assert 'rel="next"' not in third.text and 'rel="prev"' in third.text
    assert client.get(url + "?page=0").status_code in {400, 422}


def _owner(engine: Engine, sub_id: int) -> int | None:
    from service.models import Subscription

    with session_scope(engine) as session:
        return session.get(Subscription, sub_id).subscriber_id  # type: ignore[union-attr]


def test_the_archive_search_finds_only_papers_this_subscriber_was_sent(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    ada = _seed(committed_engine, "ada@example.org", ["KV cache quantization", "Sparse attention kv cache"])
    assert _deliver(committed_engine, ada, "2026-11-23", web_settings) == "sent"
    bob = _seed(committed_engine, "bob@example.org", ["KV cache for another reader"])
    assert _deliver(committed_engine, bob, "2026-11-23", web_settings) == "sent"
    with session_scope(committed_engine) as session:  # stored, matching, but never sent to ada
        add_paper(session, "arxiv:unsent", "KV caches never sent", "kv cache", seen=NOW)
    url = _path(archive_url(_owner(committed_engine, ada), ada, web_settings))

    found = client.get(url, params={"q": "KV caches quantization"})
    assert found.status_code == 200
    assert "1 paper matching" in found.text
    assert "KV cache quantization" in found.text
    assert "another reader" not in found.text and "never sent" not in found.text
    assert "digest of 2026-11-23" in found.text

    both = client.get(url, params={"q": "kv CACHES"})
    assert "2 papers matching" in both.text
    none = client.get(url, params={"q": "diffusion"})
    assert "0 papers matching" in none.text
    assert client.get(url, params={"q": "x" * 201}).status_code in {400, 422}


def test_the_manage_page_links_to_the_archive(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    sub_id = _seed(committed_engine, "ada@example.org", [])
    page = client.get(_path(manage_url(_owner(committed_engine, sub_id), sub_id, web_settings)))
    archive = re.search(r'href="(/archive/[^"]+)"', page.text)
    assert archive and "Past digests" in page.text
    assert client.get(archive.group(1)).status_code == 200


def test_the_slack_parent_message_links_to_the_digest_page(db, web_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from service.models import Subscription

    sub_id = add_subscription(db, "ada@example.org", "kv cache")
    subscription = db.get(Subscription, sub_id)
    digest = build_digest(subscription, "2026-11-23", [], now=NOW, settings=web_settings)
    [parent] = digest_messages(digest, web_settings)
    links = [b for b in parent.blocks if b.get("block_id") == "digest-links"]
    assert links, "no link block in the parent message"
    text = links[0]["elements"][0]["text"]
    assert "View in browser" in text and "/digest/" in text and "/archive/" in text


def test_the_admin_api_lists_past_digests_and_searches_sent_papers(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    from tests.web.helpers import ADMIN_TOKEN

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    sub_id = _seed(committed_engine, "ada@example.org", ["KV cache quantization", "Paged KV cache"])
    assert _deliver(committed_engine, sub_id, "2026-11-23", web_settings) == "sent"

    digests = client.get(f"/api/admin/subscriptions/{sub_id}/digests", headers=auth)
    assert digests.status_code == 200
    body = digests.json()
    assert body["total"] == 1 and body["items"][0]["paper_count"] == 2
    assert client.get(_path(body["items"][0]["url"])).status_code == 200  # the reader's page

    found = client.get(
        f"/api/admin/subscriptions/{sub_id}/sent-papers", params={"q": "quantization"}, headers=auth
    )
    assert [p["title"] for p in found.json()["items"]] == ["KV cache quantization"]
    assert client.get(f"/api/admin/subscriptions/{sub_id}/digests").status_code in {401, 403}
    assert client.get("/api/admin/subscriptions/999999/digests", headers=auth).status_code == 404


def test_the_archive_command_prints_digests_and_search_results(cli_env: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from service.config import get_settings
    from tests.cli import run_cli

    sub_id = _seed(cli_env, "ada@example.org", ["KV cache quantization", "Paged KV cache"])
    assert _deliver(cli_env, sub_id, "2026-11-23", get_settings()) == "sent"

    code, out = run_cli("archive", str(sub_id), "--json")
    assert code == 0, out
    [digest] = [json.loads(line) for line in out.splitlines()]
    assert digest["period"] == "2026-11-23" and digest["paper_count"] == 2 and "/digest/" in digest["url"]
    code, out = run_cli("archive", str(sub_id), "--search", "paged caches", "--json")
    assert code == 0 and [json.loads(line)["title"] for line in out.splitlines()] == ["Paged KV cache"]
    code, out = run_cli("archive", "424242")
    assert code == 2 and "does not exist" in out
