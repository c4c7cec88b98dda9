"""Signed links: the right one works; tampered, expired, misdirected and cross-subscriber ones never do."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.links import confirm_url, feedback_url, manage_url, unsubscribe_url
from service.models import Feedback, Subscription
from service.tokens import make_token
from tests.web.helpers import add_paper, make_subscription


def path(url: str) -> str:
    return urlsplit(url).path


def _status(engine: Engine, subscription_id: int) -> str:
    with Session(engine) as session:
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        return subscription.status


def _tamper(url: str) -> str:
    """Changes one character of the token's payload (the signature no longer matches)."""
    head, token = url.rsplit("/", 1)
    payload, rest = token.split(".", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    return f"{head}/{flipped}.{rest}"


@pytest.fixture
def two(committed_engine: Engine) -> tuple[Subscription, Subscription]:
    return (
        make_subscription(committed_engine, "ada@example.org", interests=("sparse attention",)),
        make_subscription(committed_engine, "bob@example.org", interests=("protein folding",)),
    )


def test_manage_link_opens_the_subscribers_own_page(
    client: TestClient, web_settings: Settings, two: tuple[Subscription, Subscription]
) -> None:
    ada, _ = two
    page = client.get(path(manage_url(ada.subscriber_id or 0, ada.id, web_settings)))
    assert page.status_code == 200
    assert "ada@example.org" in page.text and "sparse attention" in page.text
    assert "bob@example.org" not in page.text and "protein folding" not in page.text


@pytest.mark.parametrize("kind", ["manage", "unsubscribe", "confirm"])
def test_tampered_links_are_rejected(
    client: TestClient, web_settings: Settings, two: tuple[Subscription, Subscription], kind: str
) -> None:
    ada, _ = two
    url = {
        "manage": manage_url(ada.subscriber_id or 0, ada.id, web_settings),
        "unsubscribe": unsubscribe_url(ada.subscriber_id, ada.id, web_settings),
        "confirm": confirm_url(ada.subscriber_id or 0, web_settings),
    }[kind]
    answer = client.get(path(_tamper(url)))
    assert answer.status_code == 404
    assert "not valid" in answer.text
    assert "ada@example.org" not in answer.text


def test_a_tampered_one_click_unsubscribe_changes_nothing(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, _ = two
    url = _tamper(unsubscribe_url(ada.subscriber_id, ada.id, web_settings))
    assert client.post(path(url), data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert _status(committed_engine, ada.id) == "active"


def test_expired_links_are_rejected(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada, _ = two
    long_ago = time.time() - (web_settings.token_max_age_days + 1) * 86400
    with monkeypatch.context() as patch:
        patch.setattr("itsdangerous.timed.time.time", lambda: long_ago)
        manage = manage_url(ada.subscriber_id or 0, ada.id, web_settings)
        unsubscribe = unsubscribe_url(ada.subscriber_id, ada.id, web_settings)
    answer = client.get(path(manage))
    assert answer.status_code == 410
    assert "expired" in answer.text
    assert "subscribe page" in answer.text  # the way to a fresh link
    assert client.post(path(unsubscribe)).status_code == 410
    assert _status(committed_engine, ada.id) == "active"


def test_a_link_signed_with_another_key_is_rejected(
    client: TestClient, web_settings: Settings, two: tuple[Subscription, Subscription]
) -> None:
    ada, _ = two
    other = web_settings.model_copy(update={"secret_key": web_settings.secret_key.__class__("another key")})
    assert client.get(path(manage_url(ada.subscriber_id or 0, ada.id, other))).status_code == 404


def test_a_token_for_one_purpose_does_not_open_another(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, _ = two
    manage_token = path(manage_url(ada.subscriber_id or 0, ada.id, web_settings)).rsplit("/", 1)[1]
    unsubscribe_token = path(unsubscribe_url(ada.subscriber_id, ada.id, web_settings)).rsplit("/", 1)[1]
    assert client.post(f"/unsubscribe/{manage_token}").status_code == 404
    assert client.get(f"/manage/{unsubscribe_token}").status_code == 404
    assert client.get(f"/confirm/{manage_token}").status_code == 404
    assert _status(committed_engine, ada.id) == "active"


def test_a_token_for_one_subscriber_never_reaches_another(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, bob = two
    # A validly signed token naming Ada as subscriber but Bob's subscription (as if ids were guessed).
    crossed = {
        "manage": make_token(
            "manage", subscriber_id=ada.subscriber_id, subscription_id=bob.id, settings=web_settings
        ),
        "unsubscribe": make_token(
            "unsubscribe", subscriber_id=ada.subscriber_id, subscription_id=bob.id, settings=web_settings
        ),
    }
    page = client.get(f"/manage/{crossed['manage']}")
    assert page.status_code == 404
    assert "bob@example.org" not in page.text and "protein folding" not in page.text
    assert client.get(f"/unsubscribe/{crossed['unsubscribe']}").status_code == 404
    assert client.post(f"/unsubscribe/{crossed['unsubscribe']}").status_code == 404
    assert _status(committed_engine, bob.id) == "active"
    # Nor can a token without a subscriber reach a subscriber's subscription.
    anonymous = make_token("unsubscribe", subscription_id=bob.id, settings=web_settings)
    assert client.post(f"/unsubscribe/{anonymous}").status_code == 404
    assert _status(committed_engine, bob.id) == "active"


def test_a_link_older_than_its_subscriber_is_rejected(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deleted subscriber's id may be reused (SQLite): old links must not open the new owner's page."""
    newcomer = make_subscription(committed_engine, "new@example.org")
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as patch:
        # A link made before the row existed is, for all we know, a link for a previous owner of the id.
        patch.setattr("itsdangerous.timed.time.time", lambda: an_hour_ago)
        old_manage = manage_url(newcomer.subscriber_id or 0, None, web_settings)
        old_unsubscribe = unsubscribe_url(newcomer.subscriber_id, newcomer.id, web_settings)
        old_confirm = confirm_url(newcomer.subscriber_id or 0, web_settings)
    assert client.get(path(old_manage)).status_code == 404
    assert client.post(path(old_unsubscribe)).status_code == 404
    assert client.get(path(old_confirm)).status_code == 404
    assert _status(committed_engine, newcomer.id) == "active"
    assert client.get(path(manage_url(newcomer.subscriber_id or 0, None, web_settings))).status_code == 200


def test_unsubscribe_get_asks_and_post_unsubscribes_at_once(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, bob = two
    url = path(unsubscribe_url(ada.subscriber_id, ada.id, web_settings))
    page = client.get(url)
    assert page.status_code == 200
    assert f'<form method="post" action="{url}">' in page.text
    assert page.text.count("<button") == 1
    assert _status(committed_engine, ada.id) == "active"  # a GET (a link scanner) changes nothing
    # RFC 8058: a mail client POSTs List-Unsubscribe=One-Click, with no cookie and no CSRF token.
    mail_client = TestClient(client.app)
    answer = mail_client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    assert _status(committed_engine, ada.id) == "unsubscribed"
    assert _status(committed_engine, bob.id) == "active"
    assert mail_client.post(url).status_code == 200  # again: still fine, still unsubscribed


def test_feedback_links_record_the_latest_verdict(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, _ = two
    paper_id = add_paper(committed_engine, "Sparse attention <b>for</b> everyone")
    yes = client.get(path(feedback_url(ada.id, paper_id, True, web_settings)))
    assert yes.status_code == 200
    assert "Thank you" in yes.text and "relevant" in yes.text
    assert "Sparse attention &lt;b&gt;for&lt;/b&gt; everyone" in yes.text  # paper text is escaped
    no = client.get(path(feedback_url(ada.id, paper_id, False, web_settings)))
    assert no.status_code == 200 and "not relevant" in no.text
    with Session(committed_engine) as session:
        (feedback,) = session.scalars(select(Feedback).where(Feedback.profile_id == ada.profile_id))
        assert feedback.paper_id == paper_id
        assert feedback.relevant is False
        assert feedback.channel == "email"


def test_feedback_links_for_unknown_papers_or_forged_tokens_record_nothing(
    client: TestClient,
    web_settings: Settings,
    committed_engine: Engine,
    two: tuple[Subscription, Subscription],
) -> None:
    ada, _ = two
    paper_id = add_paper(committed_engine, "A paper")
    assert client.get(path(feedback_url(ada.id, 999_999, True, web_settings))).status_code == 404
    assert client.get(path(_tamper(feedback_url(ada.id, paper_id, True, web_settings)))).status_code == 404
    wrong_type = make_token(
        "feedback", subscription_id=ada.id, settings=web_settings, paper=paper_id, relevant="yes"
    )
    assert client.get(f"/feedback/{wrong_type}").status_code == 404
    with Session(committed_engine) as session:
        assert session.scalars(select(Feedback)).all() == []
