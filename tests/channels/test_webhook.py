"""The generic webhook channel: Discord, Teams and Mattermost payload shapes and limits (checked by
loopback servers that refuse what the platform would), splitting, and Slack-like error handling."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.channels.webhook import WebhookChannel, subscribe_webhook
from service.channels.webhook_payloads import BUILDERS, PLATFORMS
from service.config import Settings
from service.db import session_scope
from service.delivery import deliver
from service.digest.model import Digest, DigestItem, DigestLinks
from service.models import Subscription
from tests.channels.fake_webhooks import FakeWebhooks, fake_webhooks
from tests.digest.helpers import NOW, add_paper, keyword_ranker


@pytest.fixture
def hooks() -> Iterator[FakeWebhooks]:
    with fake_webhooks() as server:
        yield server


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        var_dir=tmp_path,
        secret_key="webhook-tests-secret",  # type: ignore[arg-type]
        base_url="https://paperboy.example",
        slack_max_wait_s=5,
        http_timeout_s=5,
    )


def _digest(count: int, title_len: int = 80) -> Digest:
    items = [
        DigestItem(
            paper_id=n,
            title=f"Paper {n} @channel *bold* " + "x" * title_len,
            url=f"https://arxiv.org/abs/2401.{n:05d}",
            authors=["Ada Lovelace", "Alan Turing"],
            author_count=2,
            organization=None,
            published_on=dt.date(2026, 11, 20),
            upvotes=n,
            code_url=None,
            score=1.0,
            why="matches “sparse attention” " + "because " * 60,
        )
        for n in range(1, count + 1)
    ]
    links = DigestLinks(
        manage="https://p.example/m",
        unsubscribe="https://p.example/u",
        unsubscribe_post="https://p.example/u",
        view="https://p.example/digest/t",
        archive="https://p.example/archive/t",
    )
    return Digest(1, "2026-11-23", "sparse attention", items, links, NOW)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("count", [0, 3, 120])
def test_every_payload_fits_the_platform_and_every_paper_is_sent_once(
    hooks: FakeWebhooks, tmp_path: Path, platform: str, count: int
) -> None:
    digest = _digest(count, title_len=300)
    payloads = BUILDERS[platform](digest)
    if count == 120:
        assert len(payloads) > 1  # long digests are split
    channel = WebhookChannel(_settings(tmp_path))
    for payload in payloads:
        response = channel.client.post(hooks.hook(platform), json=payload)
        assert response.status_code in (200, 204), response.text
    assert not hooks.rejected
    text = str(hooks.received[platform])
    for n in range(1, count + 1):
        assert text.count(f"2401.{n:05d})") + text.count(f"2401.{n:05d}'") >= 1, n
    assert (
        "@channel" not in text.replace("@\\u200bchannel", "").replace("@\u200bchannel", "")
        or platform == "discord"
    )
    if count:
        assert "View in browser" in text


def _subscribe(engine: Engine, settings: Settings, platform: str, url: str) -> int:
    with session_scope(engine) as session:
        add_paper(
            session,
            "arxiv:w1",
            "Sparse attention at scale",
            "sparse attention",
            seen=NOW - dt.timedelta(hours=2),
        )
        add_paper(
            session,
            "arxiv:w2",
            "Sparse attention kernels",
            "sparse attention",
            seen=NOW - dt.timedelta(hours=2),
        )
        return subscribe_webhook(session, platform, "ml-papers", url, ["sparse attention"], settings).id


def _deliver(engine: Engine, sub_id: int, settings: Settings, channel: WebhookChannel):  # type: ignore[no-untyped-def]
    return deliver(
        engine,
        sub_id,
        "2026-11-23",
        channel=channel,
        now=NOW,
        settings=settings,
        instance="t",
        ranker=keyword_ranker,
        rng=random.Random(1),
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_webhook_subscription_is_delivered_once(
    committed_engine: Engine, hooks: FakeWebhooks, tmp_path: Path, platform: str
) -> None:
    settings = _settings(tmp_path)
    sub_id = _subscribe(committed_engine, settings, platform, hooks.hook(platform))
    channel = WebhookChannel(settings)
    outcome = _deliver(committed_engine, sub_id, settings, channel)
    assert outcome.status == "sent" and outcome.message_id == f"{platform}:1 message"
    assert len(hooks.received[platform]) == 1 and "Sparse attention kernels" in str(hooks.received[platform])
    assert _deliver(committed_engine, sub_id, settings, channel).status == "skipped"  # exactly once
    with session_scope(committed_engine) as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None and hooks.hook(platform) not in (sub.secret or "")  # stored sealed


def test_a_429_is_waited_out_and_a_deleted_webhook_is_permanent(
    committed_engine: Engine, hooks: FakeWebhooks, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    slept: list[float] = []
    sub_id = _subscribe(committed_engine, settings, "discord", hooks.hook("discord"))
    hooks.answer_next(429, retry_after=0.75, times=2)
    outcome = _deliver(committed_engine, sub_id, settings, WebhookChannel(settings, sleep=slept.append))
    assert outcome.status == "sent" and slept == [0.75, 0.75]

    with session_scope(committed_engine) as session:
        other = subscribe_webhook(
            session, "teams", "gone", hooks.hook("teams"), ["sparse attention"], settings
        ).id
    hooks.answer_next(404)
    failed = _deliver(committed_engine, other, settings, WebhookChannel(settings, sleep=slept.append))
    assert failed.status == "failed" and "HTTP 404: the webhook was deleted" in (failed.error or "")
    assert "hook-secret" not in (failed.error or "")  # the URL is a secret
    with session_scope(committed_engine) as session:
        assert "webhook was deleted" in (session.get(Subscription, other).needs_attention or "")  # type: ignore[union-attr]


def test_server_errors_and_long_rate_limits_are_retried_later(
    committed_engine: Engine, hooks: FakeWebhooks, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sub_id = _subscribe(committed_engine, settings, "mattermost", hooks.hook("mattermost"))
    hooks.answer_next(500, times=3)
    outcome = _deliver(committed_engine, sub_id, settings, WebhookChannel(settings, sleep=lambda s: None))
    assert outcome.status == "retry" and "server error 500" in (outcome.error or "")
    assert not hooks.received["mattermost"]


def test_the_cli_subscribes_a_webhook(cli_env: Engine, hooks: FakeWebhooks) -> None:
    from tests.cli import run_cli

    code, out = run_cli(
        "webhook", "subscribe", "discord", "ml-papers", hooks.hook("discord"), "-i", "kv cache"
    )
    assert code == 0 and "discord:ml-papers" in out and "hook-secret" not in out
    code, out = run_cli("webhook", "subscribe", "myspace", "x", hooks.hook("discord"), "-i", "kv cache")
    assert code == 2 and "platform" in out
    code, out = run_cli("webhook", "subscribe", "teams", "x", "ftp://example.org/hook", "-i", "kv cache")
    assert code == 2 and "https://" in out


def test_the_admin_api_creates_a_webhook_subscription(committed_engine: Engine, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.web.app import create_app

    settings = _settings(tmp_path).model_copy(update={"admin_token": __import__("pydantic").SecretStr("t0k")})
    auth = {"Authorization": "Bearer t0k"}
    with TestClient(create_app(settings, committed_engine)) as client:
        body = {
            "platform": "mattermost",
            "name": "ml",
            "url": "https://chat.example/hooks/abc",
            "interests": ["kv cache"],
        }
        made = client.post("/api/admin/webhooks", json=body, headers=auth)
        assert made.status_code == 201 and made.json()["address"] == "mattermost:ml"
        assert "hooks/abc" not in made.text
        bad = client.post("/api/admin/webhooks", json=body | {"url": "ftp://x/y"}, headers=auth)
        assert bad.status_code == 400 and "https://" in bad.json()["detail"]
