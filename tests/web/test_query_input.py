"""The web form and the admin API refuse a malformed query or a wordless interest with its position,
through the same check as the CLI (service.profile.validate_query)."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.models import Interest, Subscriber
from tests.web.helpers import ADMIN_TOKEN, make_subscription, subscribe_form

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_the_subscribe_form_refuses_a_bad_query_and_a_wordless_topic(
    client: TestClient, committed_engine: Engine
) -> None:
    answer = client.post("/subscribe", data=subscribe_form(client, query="(a AND"))
    assert answer.status_code == 400
    assert "AND needs something on its right at character 4" in html.unescape(answer.text)
    answer = client.post("/subscribe", data=subscribe_form(client, keywords="the, 🚀"))
    assert answer.status_code == 400
    assert "only stop words, emoji or punctuation" in html.unescape(answer.text)
    with Session(committed_engine) as session:
        assert session.scalar(select(Subscriber.id)) is None


def test_the_admin_api_sets_a_query_and_refuses_a_malformed_one(
    client: TestClient, committed_engine: Engine
) -> None:
    sub = make_subscription(committed_engine, "ada@example.org", interests=("reinforcement learning",))
    url = f"/api/admin/subscriptions/{sub.id}"
    bad = client.patch(url, json={"query": "(a AND"}, headers=AUTH)
    assert bad.status_code == 422
    assert "AND needs something on its right at position 3" in str(bad.json()["detail"])
    good = client.patch(url, json={"query": "NOT robot*"}, headers=AUTH)
    assert good.status_code == 200, good.text
    with Session(committed_engine) as session:
        assert [(i.name, i.query) for i in session.scalars(select(Interest))] == [
            ("reinforcement learning", "NOT robot*")
        ]
    assert client.patch(url, json={"query": ""}, headers=AUTH).status_code == 200
    with Session(committed_engine) as session:
        assert session.scalar(select(Interest.query)) is None


def test_the_admin_api_will_not_empty_an_interest_that_is_only_its_query(
    client: TestClient, committed_engine: Engine
) -> None:
    sub = make_subscription(committed_engine, "ada@example.org", interests=(), query="kv cache")
    answer = client.patch(f"/api/admin/subscriptions/{sub.id}", json={"query": ""}, headers=AUTH)
    assert answer.status_code == 409
    assert "only its query" in answer.json()["detail"]
