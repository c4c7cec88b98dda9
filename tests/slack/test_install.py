"""Installing the app ("Add to Slack" through OAuth v2), uninstalling it, and the Events API check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.config import Settings
from service.models import Subscription, slack_bots, slack_installations, slack_oauth_states
from service.slack_app.installs import InstallationStore, bot_token
from service.web.app import create_app
from tests.cli import run_cli
from tests.slack.conftest import SIGNING_SECRET, make_settings
from tests.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack, event_callback, signed_headers


def app_settings(tmp_path: Path, slack: FakeSlack, **overrides: object) -> Settings:
    """A paperboy set up as an installable app, with no workspace token of its own."""
    values: dict[str, object] = {
        "slack_client_id": CLIENT_ID,
        "slack_client_secret": CLIENT_SECRET,
        "slack_authorize_url": slack.base + "/oauth/v2/authorize",
        "slack_bot_token": None,
    }
    values.update(overrides)
    return make_settings(tmp_path, slack.api_url, **values)


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    return app_settings(tmp_path, slack)


@pytest.fixture
def client(settings: Settings, committed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, committed_engine), follow_redirects=False) as test_client:
        yield test_client


def install(client: TestClient, slack: FakeSlack) -> httpx.Response:
    """The browser's way through: the install page, Slack's authorize page, the redirect back."""
    page = client.get("/slack/install")
    assert page.status_code == 200 and "Add to Slack" in page.text
    authorize = page.text.split('id="add-to-slack" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    at_slack = httpx.get(authorize, follow_redirects=False)
    assert at_slack.status_code == 302
    back = at_slack.headers["location"]
    assert back.startswith("http://testserver/slack/oauth_redirect?")
    return client.get(back.removeprefix("http://testserver"))


def test_add_to_slack_stores_one_installation_with_its_token_sealed(
    client: TestClient, settings: Settings, slack: FakeSlack, committed_engine: Engine
) -> None:
    done = install(client, slack)
    assert done.status_code == 200, done.text
    assert "paperboy is now part of <strong>Acme Research</strong>" in done.text
    (asked,) = slack.authorize_requests
    assert (
        asked["client_id"] == CLIENT_ID and asked["redirect_uri"] == "http://testserver/slack/oauth_redirect"
    )
    assert set(asked["scope"].split(",")) >= {"commands", "chat:write", "links:read", "links:write"}
    with Session(committed_engine) as session:
        (row,) = session.execute(select(slack_bots)).mappings()
        (inst,) = session.execute(select(slack_installations)).mappings()
        assert (row["team_id"], row["team_name"], inst["user_id"]) == (
            "T0002",
            "Acme Research",
            "U0INSTALLER",
        )
        issued = next(t for t, team in slack.token_teams.items() if team == "T0002")
        assert issued not in (row["bot_token"], inst["bot_token"])  # sealed at rest
        assert not row["bot_token"].startswith("xoxb")
        assert bot_token(session, settings, "T0002", None) == issued  # unsealed on the way out
        assert session.execute(select(slack_oauth_states)).first() is None  # the state was used up
    bot = InstallationStore(settings, committed_engine).find_bot(enterprise_id=None, team_id="T0002")
    assert bot is not None and bot.bot_token == issued and bot.bot_id == "B0002"

    # Installing again (new scopes, a new token) replaces the installation: still one per workspace.
    assert install(client, slack).status_code == 200
    with Session(committed_engine) as session:
        (row,) = session.execute(select(slack_bots)).mappings()
        (inst,) = session.execute(select(slack_installations)).mappings()
        newest = [t for t, team in slack.token_teams.items() if team == "T0002"][-1]
        assert newest != issued and bot_token(session, settings, "T0002", None) == newest


def test_the_redirect_is_single_use_and_bound_to_the_browser(
    client: TestClient, settings: Settings, slack: FakeSlack, committed_engine: Engine
) -> None:
    page = client.get("/slack/install")
    authorize = page.text.split('id="add-to-slack" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    back = httpx.get(authorize).headers["location"].removeprefix("http://testserver")
    with TestClient(create_app(settings, committed_engine)) as other_browser:  # no state cookie
        refused = other_browser.get(back)
        assert refused.status_code == 400 and "another browser" in refused.text
    assert client.get(back).status_code == 200
    again = client.get(back)
    assert again.status_code == 400  # the state was consumed: a second redirect installs nothing
    cancelled = client.get("/slack/oauth_redirect?error=access_denied&state=x")
    assert cancelled.status_code == 400 and "cancelled" in cancelled.text
    with Session(committed_engine) as session:
        assert len(session.execute(select(slack_bots)).all()) == 1


def test_without_app_credentials_there_is_no_install_page(tmp_path: Path, committed_engine: Engine) -> None:
    with TestClient(create_app(make_settings(tmp_path), committed_engine)) as client:
        assert client.get("/slack/install").status_code == 404


# --- events --------------------------------------------------------------------------------------


def post_event(client: TestClient, body: str, secret: str = SIGNING_SECRET) -> httpx.Response:
    return client.post("/slack/events", content=body, headers=signed_headers(body, secret))


def test_url_verification_answers_the_challenge_only_when_signed(client: TestClient) -> None:
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    answer = post_event(client, body)
    assert answer.status_code == 200 and answer.json() == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }
    assert post_event(client, body.replace("3eZ", "4eZ"), secret="guessed").status_code == 401


def subscribe_in(engine: Engine, settings: Settings, channel: str, team: str) -> int:
    with Session(engine) as session, session.begin():
        request = channel_subs.SlackSubscribe(channel_id=channel, interest="sparse attention", team_id=team)
        sub, _ = channel_subs.subscribe(session, request, settings)
        return sub.id


@pytest.mark.parametrize(
    "event", [{"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["U0PAPERBOY"]}}]
)
def test_uninstall_removes_the_tokens_and_pauses_the_workspaces_subscriptions(
    client: TestClient,
    settings: Settings,
    slack: FakeSlack,
    committed_engine: Engine,
    cli_env: Engine,
    event: dict[str, object],
) -> None:
    assert install(client, slack).status_code == 200
    ours = subscribe_in(committed_engine, settings, "C0100", "T0002")
    theirs = subscribe_in(committed_engine, settings, "C0200", "T0003")  # another workspace's
    assert post_event(client, event_callback(event, team_id="T0002")).status_code == 200
    with Session(committed_engine) as session:
        assert session.execute(select(slack_bots)).first() is None
        assert session.execute(select(slack_installations)).first() is None
        sub, other = session.get_one(Subscription, ours), session.get_one(Subscription, theirs)
        assert sub.paused and sub.needs_attention is not None
        assert f"uninstalled from workspace T0002 ({event['type']}" in sub.needs_attention
        assert not other.paused and other.needs_attention is None
    code, output = run_cli("status")
    assert code == 0 and "Slack app uninstalled from workspace T0002" in output
    # After the uninstall the workspace is a stranger: its requests are refused.
    assert (
        post_event(
            client, event_callback({"type": "app_home_opened", "user": "U1"}, team_id="T0002")
        ).status_code
        == 403
    )
    # Installing again brings the paused digests back.
    done = install(client, slack)
    assert "1 digest paused by the earlier uninstall is running again" in done.text
    with Session(committed_engine) as session:
        sub = session.get_one(Subscription, ours)
        assert not sub.paused and sub.needs_attention is None


def test_a_user_token_revocation_leaves_the_bot_alone(
    client: TestClient, slack: FakeSlack, committed_engine: Engine
) -> None:
    assert install(client, slack).status_code == 200
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U0INSTALLER"], "bot": []}}
    assert post_event(client, event_callback(event, team_id="T0002")).status_code == 200
    with Session(committed_engine) as session:
        assert len(session.execute(select(slack_bots)).all()) == 1


def test_secrets_rotate_reencrypts_the_installations_tokens(
    settings: Settings, committed_engine: Engine, tmp_path: Path
) -> None:
    from service.secrets import reseal_all

    InstallationStore(settings, committed_engine).save(
        Installation(app_id="A1", team_id="T0002", user_id="U1", bot_token="xoxb-rotate", bot_id="B1")
    )
    rotated = settings.model_copy(
        update={"secret_key": SecretStr("the-new-key"), "old_secret_keys": [settings.secret_key]}
    )
    with Session(committed_engine) as session, session.begin():
        assert reseal_all(session, rotated) == 2  # the installation's and the bot's bot_token
    new_only = settings.model_copy(update={"secret_key": SecretStr("the-new-key"), "old_secret_keys": []})
    with Session(committed_engine) as session:
        assert bot_token(session, new_only, "T0002", None) == "xoxb-rotate"
        assert bot_token(session, settings, "T0002", None) is None  # the old key alone no longer opens it
