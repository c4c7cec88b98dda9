"""Managing digests from Slack: the /paperboy modal, the App Home tab, and the digest's buttons.

Everything goes through the FastAPI app, signed, with the loopback Slack recording views.open,
views.publish and chat.postEphemeral; every view is parsed back into slack_sdk's View and checked
against Slack's limits.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.authors import AUTHORS_INTEREST, followed_authors
from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import (
    EDIT_DIGEST,
    FOLLOW_AUTHORS,
    MORE_LIKE_THIS,
    edit_value,
    follow_value,
    seed_value,
)
from service.config import Settings
from service.models import Interest, Paper, Subscription, utcnow
from service.slack_app import home
from service.web.app import create_app
from tests.slack.conftest import SIGNING_SECRET, make_settings
from tests.slack.fake_slack import Answer, FakeSlack, event_callback, signed_headers
from tests.slack.helpers import parse_message, parse_view, submitted_state
from tests.slack.test_web import command_body, signed

USER = "U0001"


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    slack.memberships[USER] = ["C0001", "C0002"]
    return make_settings(tmp_path, slack.api_url, semantic=False)


@pytest.fixture
def client(settings: Settings, committed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, committed_engine)) as test_client:
        yield test_client


def subs(engine: Engine, channel: str = "C0001") -> list[Subscription]:
    with Session(engine) as session:
        stmt = select(Subscription).where(Subscription.address == channel).order_by(Subscription.id)
        return list(session.scalars(stmt))


def open_modal(client: TestClient, slack: FakeSlack, channel: str = "C0001") -> dict[str, Any]:
    body = command_body("", channel)
    response = client.post("/slack/commands", content=body, headers=signed(body))
    assert response.status_code == 200 and response.content == b""  # the ack says nothing
    method, payload = slack.views[-1]
    assert method == "views.open" and payload["trigger_id"] in body
    parse_view(payload["view"])
    return dict(payload["view"])


def interact(client: TestClient, payload: dict[str, Any]) -> Any:
    payload = {"team": {"id": "T0001"}, "user": {"id": USER, "team_id": "T0001"}, **payload}
    body = urlencode({"payload": json.dumps(payload)})
    return client.post("/slack/interactions", content=body, headers=signed(body))


def submit(client: TestClient, view: dict[str, Any], **values: str | None) -> Any:
    sent = {**view, "id": "V1", "state": {"values": submitted_state(view, **values)}}
    return interact(client, {"type": "view_submission", "view": sent, "trigger_id": secrets.token_hex(4)})


# --- the modal -----------------------------------------------------------------------------------


def test_the_modal_creates_then_edits_the_channels_subscription(
    client: TestClient, slack: FakeSlack, committed_engine: Engine
) -> None:
    view = open_modal(client, slack)
    assert view["title"]["text"] == "New paper digest" and view["callback_id"] == "paperboy-subscription"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "interests", "query", "cadence", "weekday", "time", "timezone", "max_papers"
    ]  # fmt: skip
    saved = submit(client, view, interests="sparse attention, kv cache", query='"kv cache" AND quant*')
    assert saved.status_code == 200 and saved.content == b""  # the modal closes
    (sub,) = subs(committed_engine)
    assert (sub.cadence, sub.slack_team_id, sub.max_papers, sub.timezone) == ("daily", "T0001", 10, "UTC")
    with Session(committed_engine) as session:
        (interest,) = session.get_one(Subscription, sub.id).profile.interests
        assert (interest.keywords, interest.query) == ("sparse attention, kv cache", '"kv cache" AND quant*')
    # After the save, the saver's Home tab is published again, with the new digest on it.
    method, published = slack.views[-1]
    assert method == "views.publish" and published["user_id"] == USER
    assert f"#{sub.id}" in json.dumps(parse_view(published["view"]).to_dict())

    # The channel has one digest now: /paperboy opens it for editing, filled in.
    edit = open_modal(client, slack)
    assert edit["title"]["text"] == "Change the digest"
    assert json.loads(edit["private_metadata"])["s"] == sub.id
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in edit["blocks"] if b["type"] == "input"
    }
    assert (
        initial["interests"] == "sparse attention, kv cache" and initial["query"] == '"kv cache" AND quant*'
    )
    assert (
        submit(client, edit, cadence="weekly", weekday="2", time="07:30", timezone="Europe/Paris").status_code
        == 200
    )
    (after,) = subs(committed_engine)
    assert (after.id, after.cadence, after.weekday, after.send_time.strftime("%H:%M"), after.timezone) == (
        sub.id, "weekly", 2, "07:30", "Europe/Paris"
    )  # fmt: skip


def test_a_dropped_connection_does_not_lose_the_modal(client: TestClient, slack: FakeSlack) -> None:
    """views.open's trigger_id lasts 3 s: a connection Slack drops is tried once more at once, so the
    person who typed /paperboy still gets the modal (under a burst of 200 commands one in 600 was lost)."""
    slack.script(Answer(drop=True))
    view = open_modal(client, slack)
    assert view["callback_id"] == "paperboy-subscription"
    assert sum(1 for method, _ in slack.views if method == "views.open") == 1
    assert slack.requests >= 2  # the dropped one, then the one that opened it


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"interests": "", "query": ""}, "interests", "Say what the channel wants"),
        ({"query": "(kv cache"}, "query", "at position"),
        ({"query": 'title:"kv cache'}, "query", "unterminated phrase: missing closing quote at position 6"),
        ({"interests": '"sparse attention'}, "interests", "at position"),
        ({"timezone": "Mars/Olympus"}, "timezone", "is not a time zone"),
        ({"max_papers": "0"}, "max_papers", "from 1 to 100"),
        ({"max_papers": "5000"}, "max_papers", "from 1 to 100"),
    ],
)
def test_errors_show_on_the_field_and_nothing_is_saved(
    client: TestClient,
    slack: FakeSlack,
    committed_engine: Engine,
    values: dict[str, str],
    field: str,
    words: str,
) -> None:
    view = open_modal(client, slack)
    answer = submit(client, view, **{"interests": "sparse attention", **values})
    assert answer.status_code == 200
    data = answer.json()
    assert data["response_action"] == "errors" and words in data["errors"][field], data
    assert all(len(message) <= 150 for message in data["errors"].values())
    assert subs(committed_engine) == []


def test_a_modal_of_another_workspace_cannot_be_saved(
    client: TestClient, slack: FakeSlack, committed_engine: Engine
) -> None:
    view = open_modal(client, slack)
    forged = {**view, "private_metadata": json.dumps({"c": "C0001", "t": "T0666", "e": None, "s": None})}
    answer = submit(client, forged, interests="sparse attention")
    assert answer.json()["response_action"] == "errors"
    assert subs(committed_engine) == []


# --- the App Home tab ----------------------------------------------------------------------------


def make_subscription(
    engine: Engine, settings: Settings, channel: str = "C0001", words: str = "sparse attention"
) -> int:
    with Session(engine) as session, session.begin():
        request = channel_subs.SlackSubscribe(channel_id=channel, interest=words, team_id="T0001")
        sub, _ = channel_subs.subscribe(session, request, settings)
        return sub.id


def open_home(client: TestClient, slack: FakeSlack, user: str = USER) -> dict[str, Any]:
    body = event_callback({"type": "app_home_opened", "user": user, "tab": "home"})
    assert (
        client.post("/slack/events", content=body, headers=signed_headers(body, SIGNING_SECRET)).status_code
        == 200
    )
    method, payload = slack.views[-1]
    assert method == "views.publish" and payload["user_id"] == user
    parse_view(payload["view"])
    return dict(payload["view"])


def buttons(view: dict[str, Any], sub_id: int) -> dict[str, dict[str, Any]]:
    block = next(b for b in view["blocks"] if b.get("block_id") == f"sub-actions-{sub_id}")
    return {e["action_id"]: e for e in block["elements"]}


def click(client: TestClient, action: dict[str, Any], **extra: Any) -> Any:
    act = {"action_id": action["action_id"], "value": action["value"], "type": "button", "block_id": "b"}
    return interact(
        client, {"type": "block_actions", "actions": [act], "trigger_id": secrets.token_hex(4), **extra}
    )


def test_home_lists_the_users_channels_digests_and_its_buttons_work(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    mine = make_subscription(committed_engine, settings, "C0001")
    elsewhere = make_subscription(
        committed_engine, settings, "C0999", "kv cache"
    )  # a channel the user is not in
    view = open_home(client, slack)
    text = json.dumps(view)
    assert f"#{mine}" in text and f"#{elsewhere}" not in text
    assert set(buttons(view, mine)) == {home.EDIT, home.PAUSE, home.PREVIEW, home.UNSUBSCRIBE}

    assert click(client, buttons(view, mine)[home.PAUSE]).status_code == 200
    assert subs(committed_engine)[0].paused
    view = (
        open_home(client, slack)
        if slack.views[-1][0] != "views.publish"
        else dict(slack.views[-1][1]["view"])
    )
    assert home.RESUME in buttons(view, mine)  # refreshed after the change
    click(client, buttons(view, mine)[home.RESUME])
    assert not subs(committed_engine)[0].paused

    click(client, buttons(view, mine)[home.PREVIEW])
    (preview,) = slack.ephemerals
    assert (preview["channel"], preview["user"]) == ("C0001", USER) and preview["text"].startswith(
        "Preview: "
    )
    parse_message(preview)  # a digest message, within Slack's limits

    click(client, buttons(view, mine)[home.EDIT])
    method, opened = slack.views[-1]
    assert method == "views.open" and json.loads(opened["view"]["private_metadata"])["s"] == mine

    click(client, buttons(view, mine)[home.UNSUBSCRIBE])
    assert subs(committed_engine)[0].status == "unsubscribed"
    assert f"#{mine}" not in json.dumps(slack.views[-1][1]["view"])


def test_a_home_button_for_a_channel_the_user_is_not_in_does_nothing(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    theirs = make_subscription(committed_engine, settings, "C0999")
    forged = {"action_id": home.PAUSE, "value": str(theirs)}
    assert click(client, forged).status_code == 200
    assert not subs(committed_engine, "C0999")[0].paused


def test_home_stays_within_slacks_100_blocks(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    for n in range(40):
        make_subscription(committed_engine, settings, "C0001", f"topic {n}")
    view = open_home(client, slack)
    assert len(view["blocks"]) <= 100 and "more" in view["blocks"][-1]["elements"][0]["text"]


# --- the digest's buttons ------------------------------------------------------------------------


def test_more_like_this_adds_the_paper_as_a_seed(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    sub_id = make_subscription(committed_engine, settings)
    with Session(committed_engine) as session, session.begin():
        paper = Paper(key="arxiv:2611.00042", title="Sparse <b>attention</b>", first_seen_at=utcnow())
        session.add(paper)
        session.flush()
        paper_id = paper.id
    action = {"action_id": MORE_LIKE_THIS, "value": seed_value(sub_id, paper_id, settings)}
    extra = {"channel": {"id": "C0001"}, "response_url": slack.response_url}
    assert click(client, action, **extra).status_code == 200
    assert click(client, action, **extra).status_code == 200  # twice: still one seed
    with Session(committed_engine) as session:
        (interest,) = session.scalars(select(Interest))
        assert interest.seeds == [paper_id]
    first, second = slack.responses
    assert "Added *Sparse &lt;b&gt;attention&lt;/b&gt;* as a seed" in first["text"]
    assert "already a seed" in second["text"]
    # Clicked in another channel (a forwarded message), the button adds nothing there.
    click(client, action, channel={"id": "C0002"}, response_url=slack.response_url)
    assert slack.responses[-1]["text"].startswith("Sorry")


def test_edit_this_digest_opens_the_modal_for_that_subscription(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    sub_id = make_subscription(committed_engine, settings)
    make_subscription(committed_engine, settings, words="kv cache")  # the channel has two
    action = {"action_id": EDIT_DIGEST, "value": edit_value(sub_id, settings)}
    assert click(client, action, channel={"id": "C0001"}).status_code == 200
    method, payload = slack.views[-1]
    view = parse_view(payload["view"])
    assert method == "views.open" and json.loads(view.private_metadata)["s"] == sub_id
    assert click(client, action, channel={"id": "C0002"}).status_code == 200  # not that channel's
    assert len(slack.views) == 1


def test_follow_authors_follows_the_papers_authors_for_the_channel(
    client: TestClient, slack: FakeSlack, settings: Settings, committed_engine: Engine
) -> None:
    sub_id = make_subscription(committed_engine, settings)
    with Session(committed_engine) as session, session.begin():
        paper = Paper(
            key="arxiv:2611.00043",
            title="Sparse attention",
            authors=["Ada Lovelace", "Alan Turing"],
            first_seen_at=utcnow(),
        )
        session.add(paper)
        session.flush()
        paper_id = paper.id
    action = {"action_id": FOLLOW_AUTHORS, "value": follow_value(sub_id, paper_id, settings)}
    extra = {"channel": {"id": "C0001"}, "response_url": slack.response_url}
    assert click(client, action, **extra).status_code == 200
    click(client, action, **extra)
    with Session(committed_engine) as session:
        sub = session.get_one(Subscription, sub_id)
        assert followed_authors(sub.profile) == ["Ada Lovelace", "Alan Turing"]
        assert AUTHORS_INTEREST in sub.interests  # the channel's digest reads the followed names
    assert slack.responses[0]["text"] == "This channel now follows Ada Lovelace, Alan Turing."
    assert slack.responses[1]["text"].startswith("This channel already follows")
