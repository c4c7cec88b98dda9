"""The app manifest: printed with BASE_URL filled in, and naming only what paperboy really serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.slack_app.oauth import BOT_SCOPES
from service.web.app import create_app
from tests.cli import run_cli
from tests.slack.conftest import make_settings


def test_manifest_is_printed_for_this_base_url(cli_env: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_URL", "https://papers.example.org/pb/")
    code, output = run_cli("slack", "manifest")
    assert code == 0, output
    data = json.loads(output)
    (command,) = data["features"]["slash_commands"]
    assert command["command"] == "/paperboy"
    assert command["url"] == "https://papers.example.org/pb/slack/commands"
    assert (
        data["settings"]["interactivity"]["request_url"] == "https://papers.example.org/pb/slack/interactions"
    )
    assert (
        data["settings"]["event_subscriptions"]["request_url"] == "https://papers.example.org/pb/slack/events"
    )
    assert data["oauth_config"]["redirect_urls"] == ["https://papers.example.org/pb/slack/oauth_redirect"]
    assert "${" not in output


@pytest.mark.parametrize("base", ["http://papers.example.org", "https://a@papers.example.org", "papers"])
def test_a_base_url_slack_cannot_call_is_refused(
    cli_env: Engine, monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    monkeypatch.setenv("BASE_URL", base)
    code, output = run_cli("slack", "manifest")
    assert code == 2 and "BASE_URL" in output


def test_manifest_matches_the_app(cli_env: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BASE_URL", "https://papers.example.org")
    data = json.loads(run_cli("slack", "manifest")[1])
    # The scopes asked for at install are the manifest's, and every URL in it is a route of the app.
    assert sorted(data["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    settings = make_settings(tmp_path, slack_client_id="1.2", slack_client_secret="s")
    base = "https://papers.example.org"
    with TestClient(create_app(settings, cli_env)) as client:
        for url in (
            data["features"]["slash_commands"][0]["url"],
            data["settings"]["interactivity"]["request_url"],
            data["settings"]["event_subscriptions"]["request_url"],
        ):
            assert client.post(url.removeprefix(base), content="x").status_code == 401, url  # unsigned
        redirect = client.get(data["oauth_config"]["redirect_urls"][0].removeprefix(base))
        assert redirect.status_code == 400 and "authorization code" in redirect.text
    handled = {"app_home_opened", "app_uninstalled", "link_shared", "tokens_revoked"}
    assert set(data["settings"]["event_subscriptions"]["bot_events"]) == handled
    assert data["features"]["app_home"]["home_tab_enabled"] is True
