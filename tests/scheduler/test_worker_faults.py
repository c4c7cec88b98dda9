"""Issue 11's faults on the real RabbitMQ and PostgreSQL, with `paperboy run` and `paperboy worker` as
real processes: retries while the SMTP relay is down, and two clocks of which only the leader enqueues."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import get_settings
from service.delivery import lease
from service.delivery.tasks import CHANNEL_QUEUES, configure, enqueue_pass
from service.models import Delivery
from tests.cli import run_cli
from tests.scheduler.workers import (
    DUE,
    kill,
    paperboy,
    recently,
    sent_count,
    subscribe_many,
    wait_until,
    worker,
)
from tests.smtp_server import SmtpServer

TRY_LATER = "451 4.3.0 try again later"


def _deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def _once_each(sink: SmtpServer, count: int) -> None:
    copies = Counter(m.message["Message-ID"] for m in sink.messages)
    assert len(copies) == count and set(copies.values()) == {1}
    assert len({rcpt for m in sink.messages for rcpt in m.rcpt_tos}) == count


def test_a_short_retry_is_the_tasks_own_celery_retry_and_a_long_one_waits_for_the_clock(
    worker_env: dict[str, str], pg_engine: Engine, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First retry in 0.5-1 s (a worker's countdown), the second in 1-2 s (the database's).
    monkeypatch.setenv("DELIVERY_RETRY_BASE_S", "1")
    monkeypatch.setenv("DELIVERY_SHORT_RETRY_S", "1")
    get_settings.cache_clear()
    ids = subscribe_many(pg_engine, 6)
    smtp.handler.script("mail", *[TRY_LATER] * (2 * len(ids)))  # each digest's first two attempts
    settings = get_settings()
    app = configure(settings)
    queues = [settings.queue_prefix + q for q in ("match", *CHANNEL_QUEUES)]
    with start_worker(app, pool="solo", perform_ping_check=False, queues=queues, shutdown_timeout=30):
        enqueue_pass(pg_engine, settings, DUE)
        # No other pass: only the task's own retry can make the second attempts.
        wait_until(lambda: {(d.status, d.attempts) for d in _deliveries(pg_engine)} == {("retry", 2)}, 60)
        time.sleep(3)  # longer than any second retry's delay: no worker holds it
        assert {(d.status, d.attempts) for d in _deliveries(pg_engine)} == {("retry", 2)}
        assert not smtp.messages
        due = max(d.next_attempt_at for d in _deliveries(pg_engine) if d.next_attempt_at is not None)
        enqueue_pass(pg_engine, settings, due)  # the clock's next pass enqueues them
        wait_until(lambda: sent_count(pg_engine) == len(ids), 60)
    _once_each(smtp, len(ids))
    assert {d.attempts for d in _deliveries(pg_engine)} == {3}


def test_an_smtp_relay_down_for_a_minute_then_every_digest_goes_out_once_and_the_pass_succeeds(
    worker_env: dict[str, str], pg_engine: Engine, tmp_path: Path
) -> None:
    sink = SmtpServer()  # not started: its port refuses every connection for now
    env = {
        **worker_env,
        "SMTP_URL": sink.url,
        # Retries in 10-20 s (a worker's countdown), 20-40 s (either), 40-80 s (the database's):
        # the fourth attempt comes after the minute down, within the five attempts allowed.
        "DELIVERY_RETRY_BASE_S": "20",
        "DELIVERY_SHORT_RETRY_S": "30",
        # One pass only: the clock's retry job enqueues the retries that come due, not the next pass.
        "DISPATCH_INTERVAL_S": "3600",
        "RETRY_INTERVAL_S": "2",
    }
    ids = subscribe_many(pg_engine, 6, seen=recently())
    down_until, back = time.monotonic() + 60, 0.0
    clock = paperboy(env, "run", log=tmp_path / "clock.log")
    workers = worker(env, "w")
    try:
        # Every digest was attempted against the closed port, and none went out (a retry may be under
        # way, 'claimed', at the moment of a look).
        def all_attempted() -> bool:
            rows = _deliveries(pg_engine)
            return len(rows) == len(ids) and {d.status for d in rows} <= {"retry", "claimed"}

        wait_until(all_attempted, 120)
        time.sleep(max(down_until - time.monotonic(), 0))
        sink.start()
        back = time.monotonic()
        wait_until(lambda: sent_count(pg_engine) == len(ids), 240)
        recovered_in = time.monotonic() - back
        clock.send_signal(signal.SIGTERM)
        assert clock.wait(timeout=60) == 0, (tmp_path / "clock.log").read_text()
    finally:
        kill(clock, workers)
        if back:
            sink.stop()
    _once_each(sink, len(ids))
    assert recovered_in < 180
    code, output = run_cli("status", "--json")
    assert code == 0
    status = json.loads(output)
    assert status["deliveries_24h"] | {"empty": 0} == {"sent": 6, "pending": 0, "failed": 0, "empty": 0}
    assert status["needs_attention"] == []
    assert not set(status["last_pass"]["outcomes"]) & {"retrying", "channel_error"}


def _holder_pid(engine: Engine) -> int | None:
    held = lease.current(engine, lease.SCHEDULER_LEASE)
    if held is None or held.expires_at <= dt.datetime.now(dt.UTC):
        return None
    return int(held.holder.split(":")[1])  # host:pid:suffix


def test_two_clocks_only_the_leader_enqueues_and_the_other_takes_over_when_it_is_killed(
    worker_env: dict[str, str], pg_engine: Engine, smtp: SmtpServer, tmp_path: Path
) -> None:
    env = {**worker_env, "LEASE_SECONDS": "5", "DISPATCH_INTERVAL_S": "1"}
    before = subscribe_many(pg_engine, 8, "before", seen=recently())
    workers = worker(env, "w")
    leader = paperboy(env, "run", log=tmp_path / "leader.log")
    standby = None
    try:
        wait_until(lambda: _holder_pid(pg_engine) == leader.pid, 60)
        standby = paperboy(env, "run", log=tmp_path / "standby.log")
        wait_until(lambda: sent_count(pg_engine) == len(before), 90)
        time.sleep(2)  # the standby is up and polling the lease by now
        assert _holder_pid(pg_engine) == leader.pid
        assert "starting jobs" not in (tmp_path / "standby.log").read_text()

        kill(leader)  # kill -9: its lease is not released, only left to expire
        killed = time.monotonic()
        after = subscribe_many(pg_engine, 8, "after")  # due now, after the kill
        wait_until(lambda: _holder_pid(pg_engine) == standby.pid, 30)
        took_over_in = time.monotonic() - killed
        wait_until(lambda: sent_count(pg_engine) == len(before) + len(after), 90)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=60) == 0
    finally:
        kill(leader, standby, workers)
    _once_each(smtp, len(before) + len(after))
    # Within the lease time, plus one renewal period of the standby and its start of the jobs.
    assert took_over_in < 5 + 5 / 3 + 3
