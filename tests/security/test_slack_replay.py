"""Issue 12, item 12: a replay is refused across processes (the database remembers signatures), and a
request from a workspace that has not installed the app is refused."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import SlackSeenRequest, Subscription
from service.slack_app.installs import InstallationStore, bot_token
from service.web.app import create_app
from tests.conftest import IN_CI
from tests.slack.conftest import make_settings, slack  # noqa: F401  (the loopback Slack fixture)
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_web import command_body, signed


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:  # noqa: F811
    return make_settings(tmp_path, slack.api_url)


def subscriptions(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [
            (s.address, s.status) for s in session.scalars(select(Subscription).order_by(Subscription.id))
        ]


def test_a_request_replayed_to_another_worker_is_refused(
    settings: Settings, committed_engine: Engine
) -> None:
    body = command_body("subscribe sparse attention")
    headers = signed(body)
    # Two apps on one database: two workers (or two instances) behind a load balancer.
    with TestClient(create_app(settings, committed_engine)) as first:
        assert first.post("/slack/commands", content=body, headers=headers).status_code == 200
    with TestClient(create_app(settings, committed_engine)) as second:
        replay = second.post("/slack/commands", content=body, headers=headers)
    assert replay.status_code == 401 and "already received" in replay.text
    assert subscriptions(committed_engine) == [("C0001", "active")]


def test_seen_signatures_expire(settings: Settings, committed_engine: Engine) -> None:
    with TestClient(create_app(settings, committed_engine)) as client:
        body = command_body("list")
        assert client.post("/slack/commands", content=body, headers=signed(body)).status_code == 200
    with Session(committed_engine) as session:
        (seen,) = session.scalars(select(SlackSeenRequest))
        left = seen.expires_at - dt.datetime.now(dt.UTC)
        assert dt.timedelta(seconds=300) < left <= dt.timedelta(seconds=600)  # past the 5-minute window
        assert session.scalar(select(func.count()).select_from(SlackSeenRequest)) == 1


def test_a_request_from_another_workspace_is_refused(settings: Settings, committed_engine: Engine) -> None:
    # SLACK_BOT_TOKEN belongs to T0001 (auth.test on the loopback Slack says so); T0666 is a stranger.
    with TestClient(create_app(settings, committed_engine)) as client:
        body = command_body("subscribe sparse attention").replace("T0001", "T0666")
        response = client.post("/slack/commands", content=body, headers=signed(body))
        assert response.status_code == 403 and "not installed" in response.text
        missing = command_body("list").replace("team_id=T0001&", "")
        assert client.post("/slack/commands", content=missing, headers=signed(missing)).status_code == 403
    assert subscriptions(committed_engine) == []


def test_an_installed_workspace_is_accepted_and_an_uninstalled_one_is_not(
    settings: Settings, committed_engine: Engine
) -> None:
    app_settings = settings.model_copy(update={"slack_bot_token": None, "slack_client_id": "111.222"})
    store = InstallationStore(app_settings, committed_engine)
    store.save(
        Installation(
            app_id="A1", team_id="T0002", user_id="U1", bot_token="xoxb-t2", bot_id="B1", bot_user_id="UB1"
        )
    )
    with TestClient(create_app(app_settings, committed_engine)) as client:
        ok = command_body("list").replace("T0001", "T0002")
        assert client.post("/slack/commands", content=ok, headers=signed(ok)).status_code == 200
        legacy = command_body("list")  # T0001: no installation, and no SLACK_BOT_TOKEN any more
        assert client.post("/slack/commands", content=legacy, headers=signed(legacy)).status_code == 403
    store.delete_bot(enterprise_id=None, team_id="T0002")
    # A worker that has not seen T0002 lately asks the database, which no longer knows it.
    with TestClient(create_app(app_settings, committed_engine)) as client:
        again = command_body("list").replace("T0001", "T0002")
        assert client.post("/slack/commands", content=again, headers=signed(again)).status_code == 403


def test_with_redis_a_replay_to_another_worker_is_refused_too(
    settings: Settings, committed_engine: Engine
) -> None:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis at 127.0.0.1:6379 is unreachable (CI=true)")
        pytest.skip("Redis at 127.0.0.1:6379 is unreachable")
    shared = settings.model_copy(update={"redis_url": url})
    body = command_body("subscribe sparse attention")
    headers = signed(body)
    with TestClient(create_app(shared, committed_engine)) as first:
        assert first.post("/slack/commands", content=body, headers=headers).status_code == 200
    with TestClient(create_app(shared, committed_engine)) as second:
        assert second.post("/slack/commands", content=body, headers=headers).status_code == 401
    with Session(committed_engine) as session:  # remembered in Redis, not in the database
        assert session.scalar(select(func.count()).select_from(SlackSeenRequest)) == 0
    key = f"paperboy:slack-seen:{headers['X-Slack-Signature']}"
    assert 300 < redis.Redis.from_url(url).ttl(key) <= 600


def test_an_org_wide_install_admits_its_workspaces_and_posts_with_the_org_token(
    settings: Settings, committed_engine: Engine
) -> None:
    app_settings = settings.model_copy(update={"slack_bot_token": None, "slack_client_id": "111.222"})
    InstallationStore(app_settings, committed_engine).save(
        Installation(
            app_id="A1",
            enterprise_id="E0001",
            team_id=None,
            user_id="U1",
            bot_token="xoxb-org",
            bot_id="B1",
            is_enterprise_install=True,
        )
    )
    with TestClient(create_app(app_settings, committed_engine)) as client:
        inside = command_body("list").replace("T0001", "T0100") + "&enterprise_id=E0001"
        assert client.post("/slack/commands", content=inside, headers=signed(inside)).status_code == 200
        outside = command_body("list").replace("T0001", "T0100") + "&enterprise_id=E0666"
        assert client.post("/slack/commands", content=outside, headers=signed(outside)).status_code == 403
    with Session(committed_engine) as session:
        assert bot_token(session, app_settings, "T0100", "E0001") == "xoxb-org"
        assert bot_token(session, app_settings, "T0100", None) is None  # no workspace token of its own


def test_signatures_past_their_window_are_forgotten(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import slack_requests

    now = time.time()
    assert slack_requests.first_time(committed_engine, "v0=old", now - 3600)  # long ago: expired since
    monkeypatch.setattr(slack_requests.random, "random", lambda: 0.0)  # this time, clean up
    assert slack_requests.first_time(committed_engine, "v0=new", now)
    with Session(committed_engine) as session:
        assert list(session.scalars(select(SlackSeenRequest.signature))) == ["v0=new"]
    assert not slack_requests.first_time(committed_engine, "v0=new", now)  # still remembered
