"""Finding 7: no state change on GET; confirm links are single-use; an unsubscribe link never leads
to a page that can resubscribe; feedback by GET is last-wins and a page changes it."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.links import feedback_url, manage_url, unsubscribe_url
from service.models import Feedback, Subscription
from tests.web.helpers import add_paper, csrf_of, link_in, make_subscription, outbox, subscribe_form


def _status(engine: Engine, address: str) -> str:
    with Session(engine) as session:
        return session.scalar(select(Subscription.status).where(Subscription.address == address)) or ""


def test_confirming_takes_a_post_from_the_page_and_works_once(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    client.post("/subscribe", data=subscribe_form(client, email="ada@example.org"))
    link = link_in(outbox(web_settings)[-1], "/confirm/")

    page = client.get(link, follow_redirects=False)  # what a mail scanner does
    assert page.status_code == 200
    assert _status(committed_engine, "ada@example.org") == "pending"
    assert f'action="{link}"' in page.text and 'method="post"' in page.text

    done = client.post(link, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303 and "/manage/" in done.headers["location"]
    assert _status(committed_engine, "ada@example.org") == "active"

    # Used once: the same link opens nothing more, and mints no manage link.
    again = client.get(link, follow_redirects=False)
    assert again.status_code == 410 and "/manage/" not in again.text
    replay = client.post(link, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert replay.status_code == 410 and "location" not in replay.headers


def test_a_confirm_post_from_another_site_is_refused(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    client.post("/subscribe", data=subscribe_form(client, email="bob@example.org"))
    link = link_in(outbox(web_settings)[-1], "/confirm/")
    token = csrf_of(client.get(link).text)
    refused = client.post(link, data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert _status(committed_engine, "bob@example.org") == "pending"


def test_the_unsubscribe_pages_offer_no_manage_link(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    path = urlsplit(unsubscribe_url(ada.subscriber_id, ada.id, web_settings)).path
    assert "/manage/" not in client.get(path).text
    done = client.post(path)
    assert done.status_code == 200 and "/manage/" not in done.text


def test_resubscribing_from_the_manage_page_needs_a_fresh_confirmation(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    with Session(committed_engine) as session:
        session.get(Subscription, ada.id).status = "unsubscribed"  # type: ignore[union-attr]
        session.commit()
    url = urlsplit(manage_url(ada.subscriber_id or 0, ada.id, web_settings)).path
    form = {
        "csrf_token": csrf_of(client.get(url).text),
        "cadence": "daily",
        "weekday": "0",
        "send_time": "08:00",
        "timezone": "UTC",
        "max_papers": "10",
        "interest_count": "1",
        "interest-0-name": "sparse attention",
        "interest-0-keywords": "sparse attention",
        "resubscribe": "1",
    }
    with Session(committed_engine) as session:
        interest = session.get(Subscription, ada.id).profile.interests[0]  # type: ignore[union-attr]
        form["interest-0-id"] = str(interest.id)
    sent_before = len(outbox(web_settings))
    client.post(url, data=form, follow_redirects=False)
    assert _status(committed_engine, "ada@example.org") == "pending"
    assert len(outbox(web_settings)) == sent_before + 1
    assert link_in(outbox(web_settings)[-1], "/confirm/")


def test_feedback_by_get_is_last_wins_and_the_page_changes_it(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    paper = add_paper(committed_engine, "A paper")
    yes = urlsplit(feedback_url(ada.id, paper, True, web_settings)).path
    no = urlsplit(feedback_url(ada.id, paper, False, web_settings)).path
    client.get(yes)
    client.get(yes)
    page = client.get(no)  # a scanner opening both buttons: one verdict, the last

    def verdicts() -> list[bool]:
        with Session(committed_engine) as session:
            return list(session.scalars(select(Feedback.relevant).where(Feedback.paper_id == paper)))

    assert verdicts() == [False]
    assert f'action="{no}"' in page.text
    changed = client.post(no, data={"csrf_token": csrf_of(page.text), "relevant": "1"})
    assert changed.status_code == 200 and "marked" in changed.text
    assert verdicts() == [True]
