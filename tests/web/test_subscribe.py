"""Subscribing: double opt-in, the same answer for every address, rate limits, confirmation."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import Interest, Subscriber, Subscription
from tests.web.helpers import csrf_of, link_in, make_subscription, outbox, subscribe_form


def _subscriber(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.scalar(select(Subscriber).where(Subscriber.email == email))


def _subscriptions(engine: Engine, email: str) -> list[Subscription]:
    with Session(engine) as session:
        stmt = (
            select(Subscription).join(Subscriber).where(Subscriber.email == email).order_by(Subscription.id)
        )
        return list(session.scalars(stmt))


def _without_tokens(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_subscribe_page_offers_the_form_with_a_csrf_token(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'action="/subscribe"' in page.text
    assert "data-browser-timezone" in page.text  # pre-filled from the browser by paperboy.js
    assert "Europe/Paris" in page.text
    assert csrf_of(page.text)
    assert "paperboy_csrf" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()


def test_subscribe_creates_a_pending_subscription_and_sends_a_confirmation(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    answer = client.post("/subscribe", data=subscribe_form(client, email="ada@example.org"))
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    subscriber = _subscriber(committed_engine, "ada@example.org")
    assert subscriber is not None and not subscriber.verified
    (subscription,) = _subscriptions(committed_engine, "ada@example.org")
    assert subscription.status == "pending"
    assert subscription.timezone == "Europe/Paris"
    assert subscription.interests == ["sparse attention", "kv cache"]
    (message,) = outbox(web_settings)
    assert message["To"] == "ada@example.org"
    assert link_in(message, "/confirm/")


def test_following_the_link_confirms_and_opens_the_preferences(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    client.post(
        "/subscribe", data=subscribe_form(client, email="ada@example.org", cadence="weekly", weekday="4")
    )
    (message,) = outbox(web_settings)
    link = link_in(message, "/confirm/")
    page = client.get(link)  # a page with one button; opening the link changes nothing
    assert _subscriptions(committed_engine, "ada@example.org")[0].status == "pending"
    answer = client.post(link, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path.startswith("/manage/") and target.query == "confirmed=1"
    (subscription,) = _subscriptions(committed_engine, "ada@example.org")
    assert subscription.status == "active"
    assert subscription.cadence == "weekly" and subscription.weekday == 4
    assert subscription.next_digest_at is not None
    assert _subscriber(committed_engine, "ada@example.org").verified  # type: ignore[union-attr]
    page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert "Your subscription is confirmed" in page.text


def test_the_answer_never_reveals_whether_an_address_is_known(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    make_subscription(committed_engine, "known@example.org", interests=("graph neural networks",))
    known = client.post("/subscribe", data=subscribe_form(client, email="known@example.org", keywords="spam"))
    unknown = client.post(
        "/subscribe", data=subscribe_form(client, email="other@example.org", keywords="spam")
    )
    assert known.status_code == unknown.status_code == 200
    assert _without_tokens(known.text).replace("known@", "X@") == _without_tokens(unknown.text).replace(
        "other@", "X@"
    )
    assert known.headers.keys() == unknown.headers.keys()
    # ... and a stranger cannot change an active subscription through the form.
    (subscription,) = _subscriptions(committed_engine, "known@example.org")
    assert subscription.status == "active"
    assert subscription.interests == ["graph neural networks"]
    with Session(committed_engine) as session:
        names = session.scalars(select(Interest.name).where(Interest.profile_id == subscription.profile_id))
        assert list(names) == ["graph neural networks"]
    # Both inboxes get the same kind of email: the owner of the known one can follow it to their page.
    assert sorted(m["To"] for m in outbox(web_settings)) == ["known@example.org", "other@example.org"]


def test_subscribing_again_while_pending_keeps_one_subscription(
    client: TestClient, committed_engine: Engine
) -> None:
    client.post("/subscribe", data=subscribe_form(client, email="ada@example.org", keywords="mamba"))
    client.post(
        "/subscribe", data=subscribe_form(client, email="ada@example.org", keywords="state space models")
    )
    (subscription,) = _subscriptions(committed_engine, "ada@example.org")
    assert subscription.status == "pending"
    assert subscription.interests == ["state space models"]


def test_a_returning_unsubscriber_is_pending_again_until_confirmed(
    client: TestClient, committed_engine: Engine
) -> None:
    subscription = make_subscription(committed_engine, "back@example.org")
    with Session(committed_engine) as session:
        session.get(Subscription, subscription.id).status = "unsubscribed"  # type: ignore[union-attr]
        session.commit()
    client.post("/subscribe", data=subscribe_form(client, email="back@example.org", keywords="diffusion"))
    (again,) = _subscriptions(committed_engine, "back@example.org")
    assert again.id == subscription.id
    assert again.status == "pending"
    assert again.interests == ["diffusion"]


def test_invalid_input_is_explained_field_by_field(client: TestClient, committed_engine: Engine) -> None:
    form = subscribe_form(
        client, email="not-an-address", keywords="", timezone="Mars/Olympus", send_time="25:99"
    )
    answer = client.post("/subscribe", data=form)
    assert answer.status_code == 400
    assert "not a valid address" in answer.text or "valid" in answer.text
    assert "Tell us at least one topic" in answer.text
    assert "Choose a time zone from the list." in answer.text
    assert "hours and minutes" in answer.text
    assert 'value="not-an-address"' in answer.text  # what was typed is kept
    assert _subscriber(committed_engine, "not-an-address") is None


def test_a_subscribe_post_without_the_csrf_token_is_refused(
    client: TestClient, committed_engine: Engine
) -> None:
    form = subscribe_form(client, email="ada@example.org")
    forged = {**form, "csrf_token": form["csrf_token"][:-2] + "00"}
    assert client.post("/subscribe", data=forged).status_code == 403
    del form["csrf_token"]
    assert client.post("/subscribe", data=form).status_code == 403
    # A token from another browser (another cookie) is no good either.
    other = TestClient(client.app)
    assert (
        other.post("/subscribe", data={**form, "csrf_token": csrf_of(client.get("/").text)}).status_code
        == 403
    )
    assert _subscriber(committed_engine, "ada@example.org") is None


def test_subscribing_is_rate_limited_per_ip(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    web_settings.subscribe_limit_per_ip = 2
    for n in range(2):
        assert (
            client.post("/subscribe", data=subscribe_form(client, email=f"u{n}@example.org")).status_code
            == 200
        )
    refused = client.post("/subscribe", data=subscribe_form(client, email="u9@example.org"))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(web_settings.subscribe_limit_window_s)
    assert _subscriber(committed_engine, "u9@example.org") is None


def test_one_address_gets_a_bounded_number_of_emails(client: TestClient, web_settings: Settings) -> None:
    web_settings.subscribe_limit_per_address = 2
    answers = [
        client.post("/subscribe", data=subscribe_form(client, email="ada@example.org")) for _ in range(4)
    ]
    # The page says the same every time (nothing to learn); the inbox is not flooded.
    assert {a.status_code for a in answers} == {200}
    assert len({_without_tokens(a.text) for a in answers}) == 1
    assert len(outbox(web_settings)) == 2
