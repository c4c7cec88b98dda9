"""Relay and Slack-channel rate limits shared by every worker through the real Redis on loopback."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.channels.email import EmailChannel, RateLimiter
from service.channels.shared_limits import SharedChannelPacer, SharedRelayLimit
from service.config import Settings

REDIS = os.environ.get("PAPERBOY_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    # A relay address of its own per test: parallel runs on the shared Redis count separately.
    relay = f"smtp://user:hunter2@relay.example:{random.randint(20000, 60000)}"
    return Settings(var_dir=tmp_path, redis_url=REDIS, smtp_url=SecretStr(relay), smtp_rate_per_s=3)


def test_two_workers_share_one_relay_budget(settings: Settings) -> None:
    first, second = SharedRelayLimit(settings), SharedRelayLimit(settings)  # as in two processes
    assert "hunter2" not in first.key
    assert [first.shared.try_acquire(first.key) for _ in range(3)] == [True, True, True]
    assert not second.shared.try_acquire(second.key)  # the relay's 3/s are spent, whoever asks


def test_email_channels_use_the_shared_limit_only_with_redis(settings: Settings) -> None:
    assert isinstance(EmailChannel(settings)._limiter, SharedRelayLimit)
    assert isinstance(EmailChannel(settings.model_copy(update={"redis_url": ""}))._limiter, RateLimiter)


def test_a_slack_channels_pace_holds_across_workers(settings: Settings) -> None:
    settings = settings.model_copy(update={"slack_rate_per_channel_s": 60.0})
    channel = f"C{random.randint(10**8, 10**9)}"
    first, second = SharedChannelPacer(settings), SharedChannelPacer(settings)
    first.wait(channel)
    assert second.shared is not None
    assert not second.shared.try_acquire(f"slack:{channel}")  # one message a minute to that channel
    assert second.shared.try_acquire(f"slack:{channel}-other")  # other channels are independent
