"""Issue 12, item 10: a response_url is checked by the parser that sends the request, https to Slack only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import RELEVANT, feedback_value
from service.config import Settings
from service.models import Feedback, Paper, utcnow
from service.web.app import create_app
from service.web.slack_requests import trusted_response_url
from tests.slack.conftest import make_settings, slack  # noqa: F401  (the loopback Slack fixture)
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_web import signed


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:  # noqa: F811
    return make_settings(tmp_path, slack.api_url)


@pytest.fixture
def client(settings: Settings, committed_engine: Engine) -> Iterator[TestClient]:
    # raise_server_exceptions (the default): an exception in the background task fails the test.
    with TestClient(create_app(settings, committed_engine)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:2702@hooks.slack.com/x",  # the finding: urlsplit sees hooks.slack.com
        "https://hooks.slack.com@127.0.0.1:2702/x",
        "https://hooks.slack.com:x@127.0.0.1/x",
        "https://evil.example#@hooks.slack.com/x",
        "https://hooks.slack.com.evil.example/x",
        "https://api.slack.com/x",  # a Slack host, but not the hooks host
        "https://files.slack.com/x",
        "http://hooks.slack.com/x",  # not https
        "https://hooks.slack.com:8443/x",
        "ftp://hooks.slack.com/x",
        "hooks.slack.com/x",
        "",
    ],
)
def test_only_https_to_slacks_hooks_host_is_trusted(url: str, settings: Settings) -> None:
    assert trusted_response_url(url, settings) is False


def test_slacks_own_response_urls_are_trusted(settings: Settings) -> None:
    for url in ("https://hooks.slack.com/actions/T0001/123/abc", "https://hooks.slack.com:443/actions/T/1/a"):
        assert trusted_response_url(url, settings) is True


def test_a_response_url_with_userinfo_is_never_called_and_never_crashes(
    client: TestClient,
    committed_engine: Engine,
    settings: Settings,
    slack: FakeSlack,  # noqa: F811
) -> None:
    with Session(committed_engine) as session, session.begin():
        request = channel_subs.SlackSubscribe(channel_id="C0001", interest="sparse attention")
        sub, _ = channel_subs.subscribe(session, request, settings)
        paper = Paper(key="arxiv:2611.00001", title="Sparse attention", first_seen_at=utcnow())
        session.add(paper)
        session.flush()
        sub_id, paper_id = sub.id, paper.id
    # The same trick aimed at the loopback Slack: what urlsplit reads as its host is only user info.
    host_port = slack.base.removeprefix("http://")
    for response_url in (
        "https://127.0.0.1:2702@hooks.slack.com/x",
        f"http://hooks.slack.com@{host_port}/actions/x",
    ):
        payload = {
            "type": "block_actions",
            "team": {"id": "T0001"},
            "response_url": response_url,
            "actions": [{"action_id": RELEVANT, "value": feedback_value(sub_id, paper_id, True, settings)}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        response = client.post("/slack/interactions", content=body, headers=signed(body))
        assert response.status_code == 200
    assert slack.responses == []
    with Session(committed_engine) as session:
        assert [f.relevant for f in session.scalars(select(Feedback))] == [True]  # the click still counted
