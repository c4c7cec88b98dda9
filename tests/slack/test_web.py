"""The /paperboy slash command and the digest buttons, signed end to end through the FastAPI app."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import NOT_RELEVANT, RELEVANT, feedback_value
from service.config import Settings
from service.models import Feedback, Paper, Subscription, utcnow
from service.web.app import create_app
from tests.slack.conftest import SIGNING_SECRET, make_settings
from tests.slack.fake_slack import FakeSlack


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    return make_settings(tmp_path, slack.api_url)


@pytest.fixture
def client(settings: Settings, committed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, committed_engine)) as test_client:
        yield test_client


def signed(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(text: str, channel: str = "C0001") -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T0001",
            "channel_id": channel,
            "user_id": "U0001",
            "command": "/paperboy",
            "text": text,
            "trigger_id": secrets.token_hex(8),  # unique per request, as Slack's are
        }
    )


def command(client: TestClient, text: str, channel: str = "C0001") -> str:
    body = command_body(text, channel)
    response = client.post("/slack/commands", content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["response_type"] == "ephemeral"
    return str(data["text"])


def channel_subscriptions(engine: Engine, channel: str) -> list[Subscription]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Subscription).where(Subscription.address == channel).order_by(Subscription.id)
            )
        )


def test_subscribe_list_pause_resume_unsubscribe(client: TestClient, committed_engine: Engine) -> None:
    reply = command(client, "subscribe sparse attention, kv cache")
    (sub,) = channel_subscriptions(committed_engine, "C0001")
    assert f"(#{sub.id})" in reply and "daily at 08:00 UTC" in reply
    assert (sub.channel, sub.status, sub.subscriber_id, sub.interests) == (
        "slack",
        "active",
        None,
        ["sparse attention, kv cache"],
    )
    assert "already subscribed" in command(client, "subscribe  sparse attention,  kv cache")
    second = command(client, "subscribe retrieval <augmented> & generation")
    assert "*retrieval &lt;augmented&gt; &amp; generation*" in second  # escaped in the reply too
    listing = command(client, "list")
    assert listing.count("\n• #") == 2 and "active" in listing

    assert command(client, f"pause {sub.id}") == f"Paused #{sub.id}."
    assert [s.paused for s in channel_subscriptions(committed_engine, "C0001")] == [True, False]
    assert "paused" in command(client, "list")
    assert command(client, "resume").startswith("Resumed")
    assert not any(s.paused for s in channel_subscriptions(committed_engine, "C0001"))

    assert command(client, f"unsubscribe #{sub.id}").startswith(f"Unsubscribed #{sub.id}")
    assert [s.status for s in channel_subscriptions(committed_engine, "C0001")] == ["unsubscribed", "active"]
    assert f"#{sub.id}" not in command(client, "list")


def test_a_channel_cannot_touch_another_channels_subscription(
    client: TestClient, committed_engine: Engine
) -> None:
    command(client, "subscribe sparse attention", channel="C0001")
    (theirs,) = channel_subscriptions(committed_engine, "C0001")
    for verb in ("unsubscribe", "pause", "resume"):
        reply = command(client, f"{verb} {theirs.id}", channel="C0002")
        assert reply.startswith("Sorry") and "no such subscription" in reply
    (after,) = channel_subscriptions(committed_engine, "C0001")
    assert (after.status, after.paused) == ("active", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "*/paperboy* manages"),
        ("subscribe", "Sorry: interest"),
        ("subscribe " + "x" * 300, "at most 200"),
        ("unsubscribe", "is not a subscription id"),
        ("unsubscribe abc", "is not a subscription id"),
        ("list", "no subscriptions"),
    ],
)
def test_bad_or_empty_commands_get_a_helpful_reply(client: TestClient, text: str, expected: str) -> None:
    assert expected in command(client, text)


def test_resume_clears_a_permanent_error(client: TestClient, committed_engine: Engine) -> None:
    command(client, "subscribe sparse attention")
    with Session(committed_engine) as session, session.begin():
        sub = session.scalars(select(Subscription).where(Subscription.address == "C0001")).one()
        sub.needs_attention = "Slack not_in_channel on channel C0001: invite the paperboy app"
    assert "needs attention: Slack not_in_channel" in command(client, "list")
    command(client, "resume")
    assert channel_subscriptions(committed_engine, "C0001")[0].needs_attention is None


# --- signatures ----------------------------------------------------------------------------------


def test_a_forged_signature_is_refused(client: TestClient, committed_engine: Engine) -> None:
    body = command_body("subscribe sparse attention")
    for headers in (
        signed(body, secret="not-the-signing-secret"),
        {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64},
        {k: v for k, v in signed(body).items() if k != "X-Slack-Signature"},
        {k: v for k, v in signed(body).items() if k != "X-Slack-Request-Timestamp"},
        {**signed(body), "X-Slack-Request-Timestamp": "yesterday"},
    ):
        assert client.post("/slack/commands", content=body, headers=headers).status_code == 401
    # A body changed after signing (another channel, another command) fails as well.
    headers = signed(body)
    tampered = body.replace("C0001", "C0666")
    assert client.post("/slack/commands", content=tampered, headers=headers).status_code == 401
    assert channel_subscriptions(committed_engine, "C0001") == []
    assert channel_subscriptions(committed_engine, "C0666") == []


def test_old_and_future_timestamps_are_refused(client: TestClient) -> None:
    body = command_body("list")
    for skew in (-301, -3600, +301):
        headers = signed(body, timestamp=int(time.time()) + skew)
        assert client.post("/slack/commands", content=body, headers=headers).status_code == 401


def test_a_replayed_request_is_refused(client: TestClient, committed_engine: Engine) -> None:
    body = command_body("subscribe sparse attention")
    headers = signed(body)
    assert client.post("/slack/commands", content=body, headers=headers).status_code == 200
    (sub,) = channel_subscriptions(committed_engine, "C0001")
    command(client, f"unsubscribe {sub.id}")
    replay = client.post("/slack/commands", content=body, headers=headers)
    assert replay.status_code == 401  # the captured subscribe cannot bring it back
    assert [s.status for s in channel_subscriptions(committed_engine, "C0001")] == ["unsubscribed"]


def test_without_a_signing_secret_nothing_is_accepted(settings: Settings, committed_engine: Engine) -> None:
    app = create_app(settings.model_copy(update={"slack_signing_secret": None}), committed_engine)
    with TestClient(app) as client:
        body = command_body("list")
        assert client.post("/slack/commands", content=body, headers=signed(body)).status_code == 503


def test_slack_endpoints_are_not_in_the_admin_api_schema(client: TestClient) -> None:
    assert not any(path.startswith("/slack") for path in client.get("/openapi.json").json()["paths"])


# --- buttons -------------------------------------------------------------------------------------


def setup_button(engine: Engine, settings: Settings) -> tuple[int, int]:
    with Session(engine) as session, session.begin():
        request = channel_subs.SlackSubscribe(channel_id="C0001", interest="sparse attention")
        sub, _ = channel_subs.subscribe(session, request, settings)
        paper = Paper(key="arxiv:2611.00001", title="Sparse <attention> & you", first_seen_at=utcnow())
        session.add(paper)
        session.flush()
        return sub.id, paper.id


def click(client: TestClient, value: str, action_id: str, response_url: str) -> int:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0001"},
        "team": {"id": "T0001"},
        "channel": {"id": "C0001"},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "feedback-1", "value": value, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    return client.post("/slack/interactions", content=body, headers=signed(body)).status_code


def feedback_rows(engine: Engine) -> list[tuple[int, bool, str]]:
    with Session(engine) as session:
        return [(f.paper_id, f.relevant, f.channel) for f in session.scalars(select(Feedback))]


def test_buttons_update_the_channels_profile_and_thank_the_clicker(
    client: TestClient, committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id, paper_id = setup_button(committed_engine, settings)
    relevant = feedback_value(sub_id, paper_id, True, settings)
    assert click(client, relevant, RELEVANT, slack.response_url) == 200
    assert feedback_rows(committed_engine) == [(paper_id, True, "slack")]
    (thanks,) = slack.responses
    assert thanks["response_type"] == "ephemeral" and thanks["replace_original"] is False
    assert "*Sparse &lt;attention&gt; &amp; you* is relevant" in thanks["text"]

    not_relevant = feedback_value(sub_id, paper_id, False, settings)
    assert click(client, not_relevant, NOT_RELEVANT, slack.response_url) == 200
    assert feedback_rows(committed_engine) == [(paper_id, False, "slack")]  # the latest verdict wins
    with Session(committed_engine) as session:
        profile = session.get_one(Subscription, sub_id).profile
        assert profile.name == "slack:C0001" and [f.relevant for f in profile.feedback] == [False]


def test_a_tampered_or_foreign_button_value_records_nothing(
    client: TestClient, committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id, paper_id = setup_button(committed_engine, settings)
    good = feedback_value(sub_id, paper_id, True, settings)
    other_key = settings.model_copy(update={"secret_key": type(settings.secret_key)("someone-else")})
    for value in (good[:-2] + "xx", feedback_value(sub_id, paper_id, True, other_key), "", "{}"):
        assert click(client, value, RELEVANT, slack.response_url) == 200
    assert feedback_rows(committed_engine) == []
    assert all(r["text"].startswith("Sorry") for r in slack.responses)


def test_a_response_url_elsewhere_is_never_called(
    client: TestClient, committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id, paper_id = setup_button(committed_engine, settings)
    value = feedback_value(sub_id, paper_id, True, settings)
    assert click(client, value, RELEVANT, "http://127.0.0.2:9/actions/x") == 200
    assert feedback_rows(committed_engine) == [(paper_id, True, "slack")] and slack.responses == []


def test_a_forged_click_is_refused(client: TestClient, committed_engine: Engine, settings: Settings) -> None:
    sub_id, paper_id = setup_button(committed_engine, settings)
    value = feedback_value(sub_id, paper_id, True, settings)  # a real button: only the signature is wrong
    payload = {"type": "block_actions", "actions": [{"action_id": RELEVANT, "value": value}]}
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body, secret="guessed")
    assert client.post("/slack/interactions", content=body, headers=headers).status_code == 401
    old = signed(body, timestamp=int(time.time()) - 600)
    assert client.post("/slack/interactions", content=body, headers=old).status_code == 401
    assert feedback_rows(committed_engine) == []
