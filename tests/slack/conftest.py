"""Fixtures for the Slack tests: the loopback Slack server and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack

SECRET = "slack-tests-secret-key"
SIGNING_SECRET = "slack-tests-signing-secret"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def make_settings(tmp_path: Path, api_url: str = "http://127.0.0.1:9/api/", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": tmp_path / "var",
        "secret_key": SECRET,
        "base_url": "http://testserver",
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": api_url,
        "slack_rate_per_channel_s": 0.0,  # the pacing tests set their own pacer
        "http_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def slack_settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    return make_settings(tmp_path, slack.api_url)
