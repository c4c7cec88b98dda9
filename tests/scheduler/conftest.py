"""Fixtures of the tests on real RabbitMQ + PostgreSQL (tests/scheduler/workers.py has the helpers)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.config import get_settings
from tests.scheduler.workers import BROKER, broker_up
from tests.smtp_server import SmtpServer


@pytest.fixture
def pg_engine(committed_engine: Engine) -> Engine:
    if committed_engine.dialect.name != "postgresql":
        pytest.skip("workers share the PostgreSQL database; SQLite stays single-process")
    if not broker_up():
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
    return committed_engine


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def worker_env(
    pg_engine: Engine, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The settings every process of the test reads from its environment; the queues removed after."""
    from service.delivery.tasks import CHANNEL_QUEUES, configure

    env = {
        "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
        "BROKER_URL": BROKER,
        "QUEUE_PREFIX": f"test-{secrets.token_hex(4)}-",
        "SMTP_URL": smtp.url,
        "SMTP_RATE_PER_S": "0",
        "SEMANTIC": "false",
        "VAR_DIR": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    app = configure(get_settings())
    with app.connection_for_write(env["BROKER_URL"]) as conn:  # not a test's proxy, closed by now
        channel = conn.default_channel
        for name in ("match", *CHANNEL_QUEUES):
            channel.queue_delete(env["QUEUE_PREFIX"] + name)
    get_settings.cache_clear()
