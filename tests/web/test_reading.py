"""How a digest reads: the extractive TL;DR, trending order and best of the week (SQLite and
PostgreSQL). Popularity only reorders matched papers; nothing off-topic ever gets in."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import session_scope
from service.digest.compose import compose_digest, item_from_record, item_record
from service.digest.render import render_digest_email
from service.digest.tldr import MAX_CHARS, tldr
from service.links import manage_url
from service.models import DeliveryPaper, Subscription
from tests.cli import run_cli
from tests.digest.helpers import NOW, add_paper, add_subscription, keyword_ranker

ABSTRACT = (
    "Large language models have become ubiquitous in practice. However, long contexts make the key-value "
    "cache a memory bottleneck for serving. In this paper, we propose KVZip, a query-agnostic KV cache "
    "compression method that reuses compressed caches across queries. Code is available online."
)


def _settings() -> Settings:
    return Settings(_env_file=None, base_url="https://paperboy.example")  # type: ignore[call-arg]


def test_the_tldr_is_the_sentence_that_states_the_contribution() -> None:
    assert tldr("KV cache compression", ABSTRACT) == (
        "In this paper, we propose KVZip, a query-agnostic KV cache compression method that reuses "
        "compressed caches across queries."
    )
    results = "Transformers are widely used. We show that attention sinks explain massive activations."
    assert tldr("Attention sinks", results) == "We show that attention sinks explain massive activations."
    assert tldr("Anything", "") is None
    long = "We propose " + "a very long method name " * 30 + "."
    summary = tldr("x", long)
    assert summary is not None and len(summary) <= MAX_CHARS and summary.endswith("…")


def test_a_subscription_with_tldr_gets_one_line_per_paper_kept_for_retries(db: Session) -> None:
    add_paper(db, "arxiv:t1", "KV cache compression", ABSTRACT + " kv cache.")
    sub_id = add_subscription(db, "ada@example.org", "kv cache")
    sub = db.get(Subscription, sub_id)
    assert sub is not None
    plain = compose_digest(db, sub, "p", now=NOW, settings=_settings(), ranker=keyword_ranker)
    assert plain.items[0].tldr is None
    sub.tldr = True
    digest = compose_digest(db, sub, "p", now=NOW, settings=_settings(), ranker=keyword_ranker)
    assert digest.items[0].tldr and digest.items[0].tldr.startswith("In this paper, we propose KVZip")
    email = render_digest_email(digest)
    assert "TL;DR: In this paper, we propose KVZip" in email.text
    assert "TL;DR:</strong> In this paper, we propose KVZip" in email.html
    record = DeliveryPaper(
        paper_id=digest.items[0].paper_id, rank=1, score=1.0, reason=item_record(digest.items[0])
    )
    assert item_from_record(record).tldr == digest.items[0].tldr  # a retry or the web page shows it too


def _popular(db: Session) -> dict[str, int]:
    rows = {
        "strong": ("Sparse attention kv cache", "sparse attention kv cache", 2),
        "weak_popular": ("Sparse attention", "sparse attention", 900),
        "offtopic_popular": ("Protein folding", "biology", 5000),
    }
    return {
        key: add_paper(db, f"arxiv:pop:{key}", title, abstract, upvotes=upvotes).id
        for key, (title, abstract, upvotes) in rows.items()
    }


def test_trending_raises_popular_matches_but_never_lets_off_topic_papers_in(db: Session) -> None:
    ids = _popular(db)
    sub = db.get(Subscription, add_subscription(db, "ada@example.org", "sparse attention, kv cache"))
    assert sub is not None
    by_score = compose_digest(db, sub, "p", now=NOW, settings=_settings(), ranker=keyword_ranker)
    assert [i.paper_id for i in by_score.items] == [ids["strong"], ids["weak_popular"]]
    sub.trending = True
    trending = compose_digest(db, sub, "p", now=NOW, settings=_settings(), ranker=keyword_ranker)
    assert [i.paper_id for i in trending.items] == [ids["weak_popular"], ids["strong"]]
    sub.min_score = 0.75  # the boost never lifts a paper over min_score
    assert [
        i.paper_id
        for i in compose_digest(db, sub, "p", now=NOW, settings=_settings(), ranker=keyword_ranker).items
    ] == [ids["strong"]]


def test_best_of_the_week_orders_a_weekly_digest_by_upvotes(db: Session) -> None:
    ids = _popular(db)
    add_paper(db, "arxiv:pop:mid", "Sparse attention kv cache again", "sparse attention kv cache", upvotes=50)
    sub = db.get(
        Subscription,
        add_subscription(
            db, "ada@example.org", "sparse attention, kv cache", cadence="weekly", weekday="mon"
        ),
    )
    assert sub is not None
    sub.best_of_week = True
    digest = compose_digest(db, sub, "2026-W48", now=NOW, settings=_settings(), ranker=keyword_ranker)
    assert [i.upvotes for i in digest.items] == [900, 50, 2]
    assert ids["offtopic_popular"] not in [i.paper_id for i in digest.items]


def test_reading_options_from_the_cli_and_the_manage_page(
    cli_env: Engine, client: TestClient, web_settings: Settings, tmp_path: Path
) -> None:
    with session_scope(cli_env) as session:
        sub_id = add_subscription(session, "ada@example.org", "kv cache")
        owner = session.get(Subscription, sub_id).subscriber_id  # type: ignore[union-attr]
    code, out = run_cli("subscriptions", "reading", str(sub_id), "--tldr", "--trending")
    assert code == 0 and "tldr=on, trending=on, best_of_week=off" in out
    code, out = run_cli("subscriptions", "reading", str(sub_id), "--best-of-week")
    assert code == 2 and "needs the weekly cadence" in out

    manage = re.sub(r"^https?://[^/]+", "", manage_url(owner, sub_id, web_settings))  # type: ignore[arg-type]
    page = client.get(manage)
    assert 'name="tldr" value="1" checked' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    saved = client.post(manage + "/reading", data={"csrf_token": token, "trending": "1"})
    assert saved.status_code == 200
    with session_scope(cli_env) as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None and (sub.tldr, sub.trending) == (False, True)
    assert client.post(manage + "/reading", data={"trending": "1"}).status_code == 403
