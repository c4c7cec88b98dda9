"""The preferences page: edit interests, seeds and timing through a signed link; preview without saving."""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from service.config import Settings
from service.links import manage_url
from service.models import Interest, Profile, Subscription
from tests.web.helpers import add_paper, csrf_of, make_subscription

HAVE_RANKER = importlib.util.find_spec("service.digest.rank") is not None


def _page_url(subscription: Subscription, settings: Settings) -> str:
    return urlsplit(manage_url(subscription.subscriber_id or 0, subscription.id, settings)).path


def _load(engine: Engine, subscription_id: int) -> tuple[Subscription, list[Interest]]:
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        profile = session.scalar(
            select(Profile)
            .where(Profile.id == subscription.profile_id)
            .options(selectinload(Profile.interests))
        )
        assert profile is not None
        return subscription, list(profile.interests)


def _form(client: TestClient, url: str, interests: list[dict[str, Any]], **fields: str) -> dict[str, Any]:
    """The preferences form as a browser would send it: one row per interest and a blank row."""
    form: dict[str, Any] = {
        "csrf_token": csrf_of(client.get(url).text),
        "cadence": "daily",
        "weekday": "0",
        "send_time": "08:00",
        "timezone": "UTC",
        "max_papers": "10",
        "interest_count": str(len(interests) + 1),
    }
    for n, row in enumerate([*interests, {}]):
        for key in ("id", "name", "keywords", "query", "exclude", "add_seeds"):
            form[f"interest-{n}-{key}"] = str(row.get(key, ""))
        if row.get("remove"):
            form[f"interest-{n}-remove"] = "1"
        if row.get("seed"):
            form[f"interest-{n}-seed"] = [str(s) for s in row["seed"]]
    form.update(fields)
    return form


@pytest.fixture
def ada(committed_engine: Engine) -> Subscription:
    return make_subscription(committed_engine, "ada@example.org", interests=("sparse attention", "kv cache"))


def test_the_page_shows_the_subscription_as_it_stands(
    client: TestClient, web_settings: Settings, ada: Subscription
) -> None:
    page = client.get(_page_url(ada, web_settings))
    assert page.status_code == 200
    assert "ada@example.org" in page.text
    assert 'value="sparse attention"' in page.text and 'value="kv cache"' in page.text
    assert "daily at 08:00 UTC" in page.text
    assert "Your digest from the last 7 days" in page.text
    assert 'href="/unsubscribe/' in page.text
    assert "<option selected>UTC</option>" in page.text


def test_saving_updates_interests_seeds_and_timing(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    seed = add_paper(committed_engine, "Efficient Streaming Attention", arxiv_id="2401.01234")
    url = _page_url(ada, web_settings)
    _, (first, second) = _load(committed_engine, ada.id)
    form = _form(
        client,
        url,
        [
            {"id": first.id, "name": "attention", "keywords": '"sparse attention"^2, linear attention'},
            {"id": second.id, "name": "kv cache", "keywords": "kv cache", "add_seeds": "arXiv:2401.01234v2"},
        ],
        cadence="weekly",
        weekday="2",
        send_time="07:30",
        timezone="Asia/Tokyo",
        max_papers="5",
        paused="1",
    )
    form["interest-2-name"] = "quantisation"
    form["interest-2-query"] = "title:quantiz* AND NOT survey"
    answer = client.post(url, data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == url + "?saved=1"
    subscription, interests = _load(committed_engine, ada.id)
    assert [(i.name, i.keywords, i.query, i.seeds) for i in interests] == [
        ("attention", '"sparse attention"^2, linear attention', None, []),
        ("kv cache", "kv cache", None, [seed]),
        ("quantisation", "", "title:quantiz* AND NOT survey", []),
    ]
    assert interests[0].id == first.id  # edited in place: ids (and what hangs on them) survive
    assert subscription.interests == ["attention", "kv cache", "quantisation"]
    assert (subscription.cadence, subscription.weekday, subscription.timezone) == ("weekly", 2, "Asia/Tokyo")
    assert subscription.send_time.strftime("%H:%M") == "07:30"
    assert subscription.max_papers == 5 and subscription.paused
    assert subscription.next_digest_at is not None
    assert subscription.next_digest_at.weekday() == 1  # Wednesday 07:30 in Tokyo is Tuesday in UTC
    page = client.get(answer.headers["location"])
    assert "Saved." in page.text
    assert "Efficient Streaming Attention (2401.01234)" in page.text  # the seed, by title
    assert "weekly on Wednesday at 07:30 Asia/Tokyo" in page.text


def test_interests_can_swap_names_and_be_removed(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    url = _page_url(ada, web_settings)
    _, (first, second) = _load(committed_engine, ada.id)
    rows = [
        {"id": first.id, "name": "kv cache", "keywords": "sparse attention"},
        {"id": second.id, "name": "sparse attention", "keywords": "kv cache"},
    ]
    assert client.post(url, data=_form(client, url, rows), follow_redirects=False).status_code == 303
    subscription, interests = _load(committed_engine, ada.id)
    assert [(i.id, i.name) for i in interests] == [(first.id, "kv cache"), (second.id, "sparse attention")]
    rows = [{**rows[0], "remove": True}, rows[1]]
    assert client.post(url, data=_form(client, url, rows), follow_redirects=False).status_code == 303
    subscription, interests = _load(committed_engine, ada.id)
    assert [i.name for i in interests] == ["sparse attention"]
    assert subscription.interests == ["sparse attention"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"query": "title:(quantiz* OR"}, "at character"),
        ({"add_seeds": "no such paper anywhere"}, "Line 1: seed paper"),
        ({"keywords": "", "query": ""}, "Give keywords, a query or a seed paper"),
        ({"remove": True}, "Keep at least one interest"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_saved(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    committed_engine_ada: Subscription,
    row: dict[str, Any],
    message: str,
) -> None:
    ada = committed_engine_ada
    url = _page_url(ada, web_settings)
    _, (only,) = _load(committed_engine, ada.id)
    form = _form(
        client, url, [{"id": only.id, "name": "topic", "keywords": "mamba", **row}], cadence="weekly"
    )
    answer = client.post(url, data=form)
    assert answer.status_code == 400
    assert message in answer.text
    assert "Nothing was saved" in answer.text
    subscription, interests = _load(committed_engine, ada.id)
    assert [(i.name, i.keywords, i.query) for i in interests] == [
        ("state space models", "state space models", None)
    ]
    assert subscription.cadence == "daily"


@pytest.fixture
def committed_engine_ada(committed_engine: Engine) -> Subscription:
    return make_subscription(committed_engine, "ada@example.org", interests=("state space models",))


def test_saving_needs_the_csrf_token(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    url = _page_url(ada, web_settings)
    _, (first, _second) = _load(committed_engine, ada.id)
    form = _form(client, url, [{"id": first.id, "name": "x", "keywords": "x"}], cadence="weekly")
    del form["csrf_token"]
    assert client.post(url, data=form).status_code == 403
    subscription, interests = _load(committed_engine, ada.id)
    assert subscription.cadence == "daily" and [i.name for i in interests] == ["sparse attention", "kv cache"]


def test_another_profiles_interest_cannot_be_edited_through_the_form(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    bob = make_subscription(committed_engine, "bob@example.org", interests=("protein folding",))
    _, (bobs,) = _load(committed_engine, bob.id)
    url = _page_url(ada, web_settings)
    _, (first, _second) = _load(committed_engine, ada.id)
    rows = [
        {"id": first.id, "name": "sparse attention", "keywords": "sparse attention"},
        {"id": bobs.id, "name": "hijacked", "keywords": "hijacked", "remove": True},
    ]
    assert client.post(url, data=_form(client, url, rows), follow_redirects=False).status_code == 303
    _, (still,) = _load(committed_engine, bob.id)
    assert (still.name, still.keywords) == ("protein folding", "protein folding")


def test_pausing_and_coming_back_after_unsubscribing(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    with Session(committed_engine) as session:
        session.get(Subscription, ada.id).status = "unsubscribed"  # type: ignore[union-attr]
        session.commit()
    url = _page_url(ada, web_settings)
    page = client.get(url)
    assert "Subscribe again" in page.text
    _, interests = _load(committed_engine, ada.id)
    rows = [{"id": i.id, "name": i.name, "keywords": i.keywords} for i in interests]
    client.post(url, data=_form(client, url, rows, resubscribe="1"), follow_redirects=False)
    subscription, _ = _load(committed_engine, ada.id)
    # Coming back waits for the inbox's owner: a new confirmation email is on its way.
    assert subscription.status == "pending"


def test_the_preview_never_saves_what_it_previews(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    add_paper(committed_engine, "Sparse attention made simple", "We study sparse attention for long inputs.")
    url = _page_url(ada, web_settings)
    _, (first, second) = _load(committed_engine, ada.id)
    rows = [{"id": first.id, "name": "renamed", "keywords": "diffusion"}, {"id": second.id, "remove": True}]
    answer = client.post(url + "/preview", data=_form(client, url, rows, cadence="weekly"))
    assert answer.status_code == 200
    assert "<html" not in answer.text  # a fragment for the page to insert
    subscription, interests = _load(committed_engine, ada.id)
    assert [i.name for i in interests] == ["sparse attention", "kv cache"]
    assert subscription.cadence == "daily"


def test_the_preview_explains_a_bad_query_instead_of_ranking(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    url = _page_url(ada, web_settings)
    _, (first, _second) = _load(committed_engine, ada.id)
    answer = client.post(
        url + "/preview", data=_form(client, url, [{"id": first.id, "name": "a", "query": "(x"}])
    )
    assert answer.status_code == 400
    assert "at character" in answer.text


@pytest.mark.skipif(not HAVE_RANKER, reason="service.digest.rank (the ranker) is not in the tree yet")
def test_the_preview_ranks_the_last_weeks_papers_with_reasons(
    client: TestClient, web_settings: Settings, committed_engine: Engine, ada: Subscription
) -> None:
    add_paper(committed_engine, "Sparse attention made simple", "We study sparse attention for long inputs.")
    add_paper(committed_engine, "Protein folding at scale", "Folding proteins with transformers.")
    url = _page_url(ada, web_settings)
    _, (first, second) = _load(committed_engine, ada.id)
    rows = [
        {"id": first.id, "name": "attention", "keywords": "sparse attention"},
        {"id": second.id, "remove": True},
    ]
    answer = client.post(url + "/preview", data=_form(client, url, rows))
    assert answer.status_code == 200
    assert "Sparse attention made simple" in answer.text
    assert "Protein folding at scale" not in answer.text
    assert "Why:" in answer.text and "<mark>" in answer.text
