"""'Add to Slack' in a real browser: the install page, Slack's authorize page (the loopback Slack
approves at once and redirects back), the OAuth redirect, the installed page. Chromium through
Playwright, headless, kept on loopback; a screenshot of each page goes to tests/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import make_engine
from service.migrations import upgrade
from service.models import slack_bots
from service.slack_app.installs import bot_token
from tests.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack
from tests.smtp_server import free_port
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _need_chromium, _Server

pytestmark = pytest.mark.browser


def test_add_to_slack_through_the_oauth_redirect(tmp_path: Path, slack: FakeSlack) -> None:
    from playwright.sync_api import expect, sync_playwright

    _need_chromium()
    url = f"sqlite:///{(tmp_path / 'install.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        var_dir=tmp_path / "var",
        secret_key="browser-install-secret",  # type: ignore[arg-type]
        base_url=f"http://127.0.0.1:{port}",
        slack_api_url=slack.api_url,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
        slack_authorize_url=slack.base + "/oauth/v2/authorize",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with _Server(settings, engine, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        context.set_default_timeout(WAIT_MS)
        context.route(
            re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"),
            lambda route: (problems.append(f"off-site request {route.request.url}"), route.abort()),
        )
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        page.goto(settings.base_url + "/slack/install")
        button = page.locator("#add-to-slack")
        expect(button).to_have_text("Add to Slack")
        href = button.get_attribute("href") or ""
        assert href.startswith(slack.base + "/oauth/v2/authorize?") and f"client_id={CLIENT_ID}" in href
        page.screenshot(path=str(ARTIFACTS / "slack-install.png"), full_page=True)

        button.click()  # to the authorize page, which sends the browser back with a code
        expect(page.locator("#installed")).to_contain_text("Acme Research")
        assert page.url.startswith(settings.base_url + "/slack/oauth_redirect?code=")
        page.screenshot(path=str(ARTIFACTS / "slack-installed.png"), full_page=True)

        page.reload()  # the same code and state again: refused, nothing installed twice
        expect(page.locator("h1")).to_have_text("Something is wrong")
        browser.close()

    (asked,) = slack.authorize_requests
    assert asked["redirect_uri"] == settings.base_url + "/slack/oauth_redirect"
    with Session(engine) as session:
        (row,) = session.execute(select(slack_bots)).mappings()
        assert row["team_id"] == "T0002" and not str(row["bot_token"]).startswith("xoxb-")
        token = bot_token(session, settings, "T0002", None)
        assert token is not None and slack.token_teams[token] == "T0002"
    engine.dispose()
    assert problems == []
