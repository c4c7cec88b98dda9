"""The pass over Celery and the real RabbitMQ on loopback (queues named with a random prefix per test,
so parallel runs on the shared broker never see each other's tasks), on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from service.config import get_settings
from service.delivery.claims import schedule_new
from service.delivery.tasks import CHANNEL_QUEUES, configure, enqueue_pass
from service.models import Delivery, Subscription
from tests.digest.helpers import add_paper, add_subscription
from tests.scheduler.helpers import utc
from tests.scheduler.tcp_proxy import TcpProxy
from tests.smtp_server import ScriptedHandler, SmtpServer

BROKER = os.environ.get("PAPERBOY_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
REPO = Path(__file__).resolve().parents[2]
T0 = utc(2026, 11, 23, 7, 0)
DUE = utc(2026, 11, 23, 8, 1)


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def pg_engine(committed_engine: Engine) -> Engine:
    if committed_engine.dialect.name != "postgresql":
        pytest.skip("workers share the PostgreSQL database; SQLite stays single-process")
    if not _broker_up():
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
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in ("match", *CHANNEL_QUEUES):
            channel.queue_delete(env["QUEUE_PREFIX"] + name)
    get_settings.cache_clear()


def _subscribe(engine: Engine, count: int) -> list[int]:
    with Session(engine) as s, s.begin():
        add_paper(
            s, "arxiv:2611.00001", "Sparse attention for long documents", "Attention made sparse.", seen=T0
        )
        ids = [add_subscription(s, f"w{n}@example.org", "sparse attention") for n in range(count)]
        s.execute(update(Subscription).values(next_digest_at=None))  # scheduled on the test's clock
    schedule_new(engine, T0)
    return ids


def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not done within {seconds} s")


def _sent(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) or 0


def _worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "paperboy"),
            "worker",
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "-l",
            "WARNING",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: kill -9 reaches the pool child too
    )


def test_a_pass_through_rabbitmq_delivers_every_digest_once_and_advances_it(
    worker_env: dict[str, str], pg_engine: Engine, smtp: SmtpServer
) -> None:
    from celery.contrib.testing.worker import start_worker

    ids = _subscribe(pg_engine, 12)
    settings = get_settings()
    app: Celery = configure(settings)
    queues = [settings.queue_prefix + q for q in ("match", *CHANNEL_QUEUES)]
    with start_worker(app, pool="solo", perform_ping_check=False, queues=queues, shutdown_timeout=30):
        report = enqueue_pass(pg_engine, settings, DUE)
        assert report.lost_claims == 0
        _wait_for(lambda: _sent(pg_engine) == len(ids), 60)
        # A second pass finds nothing due: every subscription was advanced to tomorrow.
        assert enqueue_pass(pg_engine, settings, DUE + dt.timedelta(minutes=5)).lost_claims == 0
        time.sleep(1)
    recipients = Counter(rcpt for m in smtp.messages for rcpt in m.rcpt_tos)
    assert sorted(recipients) == sorted(f"w{n}@example.org" for n in range(len(ids)))
    assert set(recipients.values()) == {1}
    with Session(pg_engine) as s:
        nexts = {
            sub.next_digest_at for sub in s.scalars(select(Subscription).where(Subscription.id.in_(ids)))
        }
    assert nexts == {utc(2026, 11, 24, 8, 0)}


def test_the_worker_command_needs_a_broker(cli_env: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.cli import run_cli

    monkeypatch.delenv("BROKER_URL", raising=False)
    code, output = run_cli("worker")
    assert code == 2 and "BROKER_URL" in output


class SlowHandler(ScriptedHandler):
    """A relay that takes a while per message, so a worker can be killed in the middle of a batch."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.15)
        return await super().handle_DATA(server, session, envelope)


def test_a_worker_killed_mid_batch_leaves_its_work_to_another_none_twice_none_lost(
    worker_env: dict[str, str], pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUCK_DELIVERY_POLICY", "resend")  # the one killed between send and mark
    monkeypatch.setenv("STUCK_DELIVERY_DELAY_S", "0")
    monkeypatch.setenv("HEARTBEAT_S", "1")  # dead after three missed beats: 3 s, not 30
    recovery = {"STUCK_DELIVERY_POLICY": "resend", "STUCK_DELIVERY_DELAY_S": "0", "HEARTBEAT_S": "1"}
    worker_env = {**worker_env, **recovery}
    get_settings.cache_clear()
    with SmtpServer(SlowHandler()) as slow:
        worker_env = {**worker_env, "SMTP_URL": slow.url}
        monkeypatch.setenv("SMTP_URL", slow.url)
        get_settings.cache_clear()
        ids = _subscribe(pg_engine, 24)
        settings = get_settings()
        configure(settings)
        first = _worker(worker_env, "first")
        second = None
        try:
            # Real time here: the workers' heartbeats say who is alive in real time.
            enqueue_pass(pg_engine, settings, dt.datetime.now(dt.UTC))
            _wait_for(lambda: len(slow.messages) >= 6, 90)
            os.killpg(first.pid, signal.SIGKILL)  # kill -9, parent and pool child alike
            first.wait(timeout=10)
            killed_at = len(slow.messages)
            assert killed_at < len(ids)  # it really died mid-batch
            second = _worker(worker_env, "second")
            started = time.monotonic()

            def settled() -> bool:
                # The clock's pass every second: stuck deliveries of the dead worker are resent.
                enqueue_pass(pg_engine, settings, dt.datetime.now(dt.UTC))
                return _sent(pg_engine) == len(ids)

            _wait_for(settled, 90)
            recovered_in = time.monotonic() - started
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
    copies = Counter(m.message["Message-ID"] for m in slow.messages)
    assert len(copies) == len(ids)  # every digest arrived: none lost
    # None twice: at most the one killed between send and mark went again, under the same Message-ID.
    assert sum(n - 1 for n in copies.values()) <= 1
    assert recovered_in < 60


def test_a_broker_connection_dropped_mid_pass_and_the_pass_still_completes_once(
    worker_env: dict[str, str], pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5672))  # the connection is cut here, not the shared server
    through_proxy = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
    monkeypatch.setenv("BROKER_URL", through_proxy)
    with SmtpServer(SlowHandler()) as slow:
        monkeypatch.setenv("SMTP_URL", slow.url)
        get_settings.cache_clear()
        env = {**worker_env, "BROKER_URL": through_proxy, "SMTP_URL": slow.url}
        ids = _subscribe(pg_engine, 24)
        settings = get_settings()
        configure(settings)
        worker = _worker(env, "cut")
        try:
            enqueue_pass(pg_engine, settings, DUE)
            _wait_for(lambda: len(slow.messages) >= 6, 90)
            assert proxy.cut() >= 1  # the worker's AMQP connection, mid-batch
            _wait_for(lambda: _sent(pg_engine) == len(ids), 90)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            proxy.close()
    copies = Counter(m.message["Message-ID"] for m in slow.messages)
    assert len(copies) == len(ids) and set(copies.values()) == {1}
