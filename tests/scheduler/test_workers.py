"""The pass over Celery and the real RabbitMQ on loopback (queues named with a random prefix per test,
so parallel runs on the shared broker never see each other's tasks), on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import get_settings
from service.delivery.tasks import CHANNEL_QUEUES, configure, enqueue_pass
from service.models import Subscription
from tests.scheduler.helpers import utc
from tests.scheduler.tcp_proxy import TcpProxy
from tests.scheduler.workers import DUE, kill, recently, sent_count, subscribe_many, wait_until, worker
from tests.smtp_server import ScriptedHandler, SmtpServer


def test_a_pass_through_rabbitmq_delivers_every_digest_once_and_advances_it(
    worker_env: dict[str, str], pg_engine: Engine, smtp: SmtpServer
) -> None:
    from celery.contrib.testing.worker import start_worker

    ids = subscribe_many(pg_engine, 12)
    settings = get_settings()
    app: Celery = configure(settings)
    queues = [settings.queue_prefix + q for q in ("match", *CHANNEL_QUEUES)]
    with start_worker(app, pool="solo", perform_ping_check=False, queues=queues, shutdown_timeout=30):
        report = enqueue_pass(pg_engine, settings, DUE)
        assert report.lost_claims == 0
        wait_until(lambda: sent_count(pg_engine) == len(ids), 60)
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
        ids = subscribe_many(pg_engine, 24, seen=recently())
        settings = get_settings()
        configure(settings)
        first = worker(worker_env, "first")
        second = None
        try:
            # Real time here: the workers' heartbeats say who is alive in real time.
            enqueue_pass(pg_engine, settings, dt.datetime.now(dt.UTC))
            wait_until(lambda: len(slow.messages) >= 6, 90)
            os.killpg(first.pid, signal.SIGKILL)  # kill -9, parent and pool child alike
            first.wait(timeout=10)
            killed_at = len(slow.messages)
            assert killed_at < len(ids)  # it really died mid-batch
            second = worker(worker_env, "second")
            started = time.monotonic()

            def settled() -> bool:
                # The clock's pass every second: stuck deliveries of the dead worker are resent.
                enqueue_pass(pg_engine, settings, dt.datetime.now(dt.UTC))
                return sent_count(pg_engine) == len(ids)

            wait_until(settled, 90)
            recovered_in = time.monotonic() - started
        finally:
            kill(first, second)
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
        ids = subscribe_many(pg_engine, 24)
        settings = get_settings()
        configure(settings)
        cutworker = worker(env, "cut")
        try:
            enqueue_pass(pg_engine, settings, DUE)
            wait_until(lambda: len(slow.messages) >= 6, 90)
            assert proxy.cut() >= 1  # the worker's AMQP connection, mid-batch
            wait_until(lambda: sent_count(pg_engine) == len(ids), 90)
        finally:
            kill(cutworker)
            proxy.close()
    copies = Counter(m.message["Message-ID"] for m in slow.messages)
    assert len(copies) == len(ids) and set(copies.values()) == {1}
