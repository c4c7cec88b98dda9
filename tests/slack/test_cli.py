"""`paperboy slack subscribe / list` through Typer's runner, secrets read from a hidden prompt."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.models import Subscription
from service.secrets import unseal
from tests.slack.conftest import SECRET

runner = CliRunner()
HOOK = "https://hooks.slack.com/services/T0001/B0001/cli-secret-path"


@pytest.fixture
def cli_db(cli_env: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    return cli_env


def rows() -> list[dict[str, object]]:
    result = runner.invoke(app, ["slack", "list", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_subscribe_a_channel_and_a_webhook_then_list_them(cli_db: Engine) -> None:
    result = runner.invoke(
        app, ["slack", "subscribe", "C0123ABCD", "-i", "sparse attention", "--time", "09:30"]
    )
    assert result.exit_code == 0, result.output
    assert "slack C0123ABCD, sparse attention, daily at 09:30 UTC" in result.output

    result = runner.invoke(
        app, ["slack", "subscribe", "team-papers", "-i", "kv cache", "--webhook"], input=HOOK + "\n"
    )
    assert result.exit_code == 0, result.output
    assert HOOK not in result.output and "cli-secret-path" not in result.output  # the prompt hides it
    listed = rows()
    assert [(r["address"], r["via"], r["interests"]) for r in listed] == [
        ("C0123ABCD", "bot", ["sparse attention"]),
        ("team-papers", "webhook", ["kv cache"]),
    ]
    assert "cli-secret-path" not in runner.invoke(app, ["slack", "list"]).output
    with Session(cli_db) as session:
        hook = session.scalars(select(Subscription).where(Subscription.address == "team-papers")).one()
        assert hook.secret and "cli-secret-path" not in hook.secret
        assert unseal(hook.secret, get_settings()).reveal() == HOOK

    again = runner.invoke(app, ["slack", "subscribe", "C0123ABCD", "-i", "sparse  attention"])
    assert again.exit_code == 0 and again.output.startswith("already subscribed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not a channel", "-i", "x"], "is not a Slack channel id"),
        (["C0123ABCD", "-i", "x", "--timezone", "Mars/Olympus"], "schedule"),
        (["C0123ABCD", "-i", "x", "--cadence", "weekly"], "weekday"),
        (["C0123ABCD", "-i", "x", "--webhook", "--own-token"], "not both"),
    ],
)
def test_bad_input_exits_2_naming_the_field(cli_db: Engine, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["slack", "subscribe", *args], input="x\n")
    assert result.exit_code == 2 and message in result.output
    assert rows() == []
