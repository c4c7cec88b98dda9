"""Queries and interests do what they say: `-i X -q Q` is "X, filtered by Q", bad input is refused at
the door with the parser's position, and one address never gets one paper twice."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.compose import compose_digest
from service.digest.rank import rank_papers
from service.models import Delivery, DeliveryPaper, Subscription
from service.subscription import SubscriptionError, SubscriptionRequest, create_subscription, subscribe
from tests.cli import run_cli
from tests.digest.helpers import NOW, add_paper, keyword_ranker

LEXICAL = Settings(_env_file=None, semantic=False, base_url="https://paperboy.example")  # type: ignore[call-arg]


def test_a_query_filters_the_interests_it_was_given_with(db: Session) -> None:
    sub = create_subscription(
        db,
        SubscriptionRequest(email="rl@example.org", interests=["reinforcement learning"], query="NOT robot*"),
    )
    robot = add_paper(
        db,
        "arxiv:2611.00001",
        "Reinforcement learning for robot grasping",
        "We train robots with reinforcement learning to grasp objects.",
    )
    language = add_paper(
        db,
        "arxiv:2611.00002",
        "Reinforcement learning from human feedback for language models",
        "Reinforcement learning aligns language models with human preferences.",
    )
    items = rank_papers(db, sub.profile, [robot, language], interests=sub.interests, settings=LEXICAL)
    assert [item.paper_id for item in items] == [language.id]
    assert items[0].interest == "reinforcement learning"


def test_a_query_alone_is_an_interest_named_by_its_text(db: Session) -> None:
    sub = create_subscription(db, SubscriptionRequest(email="q@example.org", interests=[], query="kv  cache"))
    assert sub.interests == ["kv cache"]
    assert [(i.name, i.keywords, i.query) for i in sub.profile.interests] == [("kv cache", "", "kv cache")]


@pytest.mark.parametrize(
    ("interests", "query", "expected"),
    [
        (["sparse attention"], "(a AND", "query '(a AND': AND needs something on its right at position 3"),
        (["the of and"], None, "interest 'the of and': nothing to search for (only stop words, emoji"),
        (["🚀 🔥"], None, "interest '🚀 🔥': nothing to search for"),
        (["(robots"], None, "interest '(robots': missing closing parenthesis for this one at position 0"),
    ],
)
def test_malformed_queries_and_wordless_interests_are_refused_before_anything_is_stored(
    db: Session, interests: list[str], query: str | None, expected: str
) -> None:
    with pytest.raises(SubscriptionError) as error:
        create_subscription(
            db, SubscriptionRequest(email="bad@example.org", interests=interests, query=query)
        )
    assert str(error.value).startswith(expected)
    assert db.scalar(select(Subscription.id)) is None


def test_subscribing_again_updates_the_query_and_the_subscription_instead_of_adding_one(db: Session) -> None:
    first = subscribe(db, SubscriptionRequest(email="a@example.org", interests=["rl"], query="NOT robot*"))
    again = subscribe(
        db,
        SubscriptionRequest(
            email="A@example.org", interests=["rl"], query="NOT (robot* OR drone*)", cadence="weekdays"
        ),
    )
    assert first.created and not again.created
    assert again.subscription.id == first.subscription.id
    assert again.subscription.cadence == "weekdays"
    assert [(i.name, i.query) for i in again.subscription.profile.interests] == [
        ("rl", "NOT (robot* OR drone*)")
    ]
    # Without --query the interest is no longer filtered: the command states the interest whole.
    subscribe(db, SubscriptionRequest(email="a@example.org", interests=["rl"]))
    assert [i.query for i in first.subscription.profile.interests] == [None]
    assert len(list(db.scalars(select(Subscription)))) == 1


def test_one_paper_is_never_sent_twice_to_one_address_by_overlapping_subscriptions(db: Session) -> None:
    settings = Settings(_env_file=None, base_url="https://paperboy.example")  # type: ignore[call-arg]
    daily = create_subscription(
        db, SubscriptionRequest(email="a@example.org", interests=["sparse attention"])
    )
    both = create_subscription(
        db, SubscriptionRequest(email="a@example.org", interests=["sparse attention", "kv cache"])
    )
    assert daily.id != both.id
    paper = add_paper(db, "arxiv:2611.00003", "Sparse attention with a kv cache")
    other = add_paper(db, "arxiv:2611.00004", "A kv cache for long context")
    first = compose_digest(db, daily, "2026-11-23", now=NOW, settings=settings, ranker=keyword_ranker)
    assert [i.paper_id for i in first.items] == [paper.id]
    delivery = Delivery(subscription_id=daily.id, period="2026-11-23", status="sent", created_at=NOW)
    db.add(delivery)
    db.flush()
    db.add(
        DeliveryPaper(delivery_id=delivery.id, subscription_id=daily.id, paper_id=paper.id, rank=1, score=1)
    )
    db.flush()
    later = NOW + dt.timedelta(minutes=5)
    second = compose_digest(db, both, "2026-11-23", now=later, settings=settings, ranker=keyword_ranker)
    assert [i.paper_id for i in second.items] == [other.id]


def _cli_json(*args: str) -> list[dict[str, object]]:
    code, out = run_cli("subscriptions", "list", "--json", *args)
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_cli_shows_and_updates_the_query_and_refuses_a_bad_one(cli_env: Engine) -> None:
    code, out = run_cli("subscribe", "rl@example.org", "-i", "reinforcement learning", "-q", "NOT robot*")
    assert code == 0, out
    assert "reinforcement learning [NOT robot*]" in out
    rows = _cli_json()
    assert rows[0]["interests"] == ["reinforcement learning"]
    assert rows[0]["queries"] == {"reinforcement learning": "NOT robot*"}
    code, out = run_cli("subscriptions", "list")
    assert "NOT robot*" in out and " query" not in out

    code, out = run_cli("subscribe", "rl@example.org", "-i", "reinforcement learning", "-q", "NOT drone*")
    assert code == 0, out
    assert f"subscription {rows[0]['id']} updated" in out
    rows = _cli_json()
    assert len(rows) == 1 and rows[0]["queries"] == {"reinforcement learning": "NOT drone*"}

    code, out = run_cli("subscribe", "x@example.org", "-i", "rl", "-q", "(a AND")
    assert code == 2
    assert "query '(a AND': AND needs something on its right at position 3" in out
    assert "     ^" in out  # the caret under the position
    code, out = run_cli("subscribe", "x@example.org", "-i", "the and of")
    assert code == 2 and "only stop words, emoji or punctuation" in out
    assert [r["email"] for r in _cli_json()] == ["rl@example.org"]


def test_a_bulk_import_gives_a_query_the_same_meaning_and_checks(cli_env: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "subs.csv"
    path.write_text(
        "email,interests,query,cadence,weekday,time,timezone,max_papers\n"
        "rl@example.org,reinforcement learning,NOT robot*,daily,,08:00,UTC,10\n"
        "q@example.org,,kv cache,daily,,08:00,UTC,10\n"
        "bad@example.org,rl,(a AND,daily,,08:00,UTC,10\n"
        "stop@example.org,the of,,daily,,08:00,UTC,10\n",
        encoding="utf-8",
    )
    code, out = run_cli("subscriptions", "import", str(path), "--as-confirmed", "--consent-source", "test")
    assert code == 1
    assert "line 4: query: query '(a AND': AND needs something on its right at position 3" in out
    assert "line 5: interests: interest 'the of': nothing to search for" in out
    rows = {r["email"]: r for r in _cli_json()}
    assert rows["rl@example.org"]["interests"] == ["reinforcement learning"]
    assert rows["rl@example.org"]["queries"] == {"reinforcement learning": "NOT robot*"}
    assert rows["q@example.org"]["interests"] == ["kv cache"]
    code, out = run_cli("subscriptions", "export")
    assert "rl@example.org,reinforcement learning,NOT robot*" in out
    assert "q@example.org,,kv cache" in out
