"""The scheduler service: fixed jobs in the database job store, one leader, takeover, clean SIGTERM."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from service.clock import ManualClock
from service.config import Settings
from service.db import make_engine
from service.delivery import lease
from service.delivery.scheduler import DISPATCH_JOB_ID, INGEST_JOB_ID, Runtime, SchedulerService
from service.migrations import upgrade
from service.models import Delivery, Subscription
from tests.scheduler.helpers import subscribe, utc
from tests.smtp_server import ScriptedHandler, SmtpServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_engines(database_url: str, committed_engine: Engine) -> Iterator[tuple[Engine, Engine]]:
    pair = (make_engine(database_url), make_engine(database_url))
    yield pair
    for eng in pair:
        eng.dispose()


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    """Poll until predicate() is true (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_one_leader_runs_the_jobs_and_another_takes_over_when_it_dies(
    two_engines: tuple[Engine, Engine], committed_engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var", lease_seconds=30, send_empty_digests=True, smtp_rate_per_s=1e6
    )
    clock = ManualClock(dt.datetime.now(dt.UTC))
    # Subscribed before any scheduler runs: on SQLite a read-then-write transaction racing the
    # leader's first jobs can be refused at once ("database is locked", a stale WAL snapshot is not
    # retried by the busy timeout); the UPDATE below that makes it due writes first and waits its turn.
    sid = subscribe(committed_engine, "lead@example.org")
    a = SchedulerService(two_engines[0], settings, clock, instance="instance-a")
    b = SchedulerService(two_engines[1], settings, clock, instance="instance-b")
    try:
        assert a.step() and a.leading
        assert not b.step() and not b.leading
        assert a.scheduler is not None
        jobs = {job.id: job for job in a.scheduler.get_jobs()}
        assert set(jobs) == {INGEST_JOB_ID, DISPATCH_JOB_ID}
        for job in jobs.values():
            assert (job.coalesce, job.max_instances) == (True, 1)
            assert job.misfire_grace_time == job.trigger.interval.total_seconds()
        # The leader's jobs really run: a due subscription gets its digest in the outbox.
        with Session(committed_engine) as s, s.begin():
            s.execute(
                update(Subscription).where(Subscription.id == sid).values(next_digest_at=utc(2020, 1, 1))
            )
        assert a.scheduler is not None
        scheduler = a.scheduler
        asked = [0.0]

        def digest_in_outbox() -> bool:
            if list(settings.resolved_outbox_dir.glob("*.eml")):
                return True
            # The job's first run may still be going (max_instances=1 skips a run asked for meanwhile,
            # and that first run began before the subscription was due): ask again each second.
            if time.monotonic() - asked[0] > 1.0:
                scheduler.get_job(DISPATCH_JOB_ID).modify(next_run_time=dt.datetime.now(dt.UTC))
                asked[0] = time.monotonic()
            return False

        assert wait_for(digest_in_outbox, timeout=120.0)

        # a dies without a word: its scheduler is gone and its lease is not renewed.
        a._stop_scheduler()
        clock.advance(seconds=10)
        assert not b.step()  # not expired yet
        clock.advance(seconds=21)
        assert b.step() and b.leading
        assert b.scheduler is not None
        assert {job.kwargs["instance"] for job in b.scheduler.get_jobs()} == {"instance-b"}
        held = lease.current(committed_engine, lease.SCHEDULER_LEASE)
        assert held is not None and held.holder == "instance-b"
        # a comes back: it stands by while b leads.
        assert not a.step() and not a.leading
        # b shuts down cleanly: the lease is released and a leads at once, no expiry to wait for.
        b.shutdown()
        assert lease.current(committed_engine, lease.SCHEDULER_LEASE) is None
        assert a.step() and a.leading
    finally:
        a.shutdown()
        b.shutdown()


def test_a_leader_that_loses_its_lease_stops_its_scheduler(
    two_engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    settings = Settings(var_dir=tmp_path / "var", lease_seconds=30)
    clock = ManualClock(dt.datetime.now(dt.UTC))
    a = SchedulerService(two_engines[0], settings, clock, instance="instance-a")
    b = SchedulerService(two_engines[1], settings, clock, instance="instance-b")
    try:
        assert a.step()
        clock.advance(seconds=31)  # a stalled (a long GC pause, a suspended VM) past its lease
        assert b.step()
        assert not a.step() and a.scheduler is None
    finally:
        a.shutdown()
        b.shutdown()


class GatedHandler(ScriptedHandler):
    """Holds the first message at DATA until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.arrived.is_set():
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        return await super().handle_DATA(server, session, envelope)


def test_sigterm_finishes_the_send_in_flight_takes_no_new_work_and_exits_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'var' / 'paperboy.db').as_posix()}"
    (tmp_path / "var").mkdir()
    upgrade(url)
    engine = make_engine(url)
    ids = [subscribe(engine, f"s{n}@example.org") for n in range(3)]
    with Session(engine) as s, s.begin():
        s.execute(update(Subscription).values(next_digest_at=utc(2020, 1, 1)))
    handler = GatedHandler()
    with SmtpServer(handler) as smtp:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "VAR_DIR": str(tmp_path / "var"),
            "SMTP_URL": smtp.url,
            "SEND_EMPTY_DIGESTS": "true",
            "SMTP_RATE_PER_S": "1000",
            "DISPATCH_INTERVAL_S": "3600",
            "INGEST_INTERVAL_S": "3600",
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", "from service.cli import main; main()", "run"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True)
        reader.start()
        try:
            assert handler.arrived.wait(60), "no digest reached the SMTP server"
            proc.send_signal(signal.SIGTERM)
            seen = []
            while not any("event=shutdown signal=SIGTERM" in line for line in seen):
                seen.append(lines.get(timeout=30))
            assert proc.poll() is None  # still running: the send is in flight
            handler.gate.set()
            assert proc.wait(timeout=60) == 0
        finally:
            handler.gate.set()
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=10)
        log = "".join(seen) + "".join(lines.queue)
    assert "event=stopped" in log and "Traceback" not in log
    assert len(handler.messages) == 1  # the one in flight went out; no new one was started
    with Session(engine) as s:
        rows = s.execute(select(Delivery.subscription_id, Delivery.status)).all()
        due = s.scalars(select(Subscription.id).where(Subscription.next_digest_at == utc(2020, 1, 1))).all()
    assert [r.status for r in rows] == ["sent"]
    assert sorted(due) == sorted(set(ids) - {rows[0].subscription_id})  # left for the next run
    assert lease.current(engine, lease.SCHEDULER_LEASE) is None  # released on the way out
    engine.dispose()


def test_with_workers_the_clock_also_runs_the_retry_job(committed_engine: Engine, tmp_path: Path) -> None:
    from service.delivery.scheduler import RETRY_JOB_ID, build_scheduler

    clock = ManualClock(dt.datetime.now(dt.UTC))
    for broker, expected in (("", set()), ("amqp://guest:guest@127.0.0.1:5672//", {RETRY_JOB_ID})):
        settings = Settings(var_dir=tmp_path / "var", broker_url=broker, retry_interval_s=7)
        scheduler = build_scheduler(Runtime(committed_engine, settings, clock, "a", threading.Event()))
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) - {INGEST_JOB_ID, DISPATCH_JOB_ID} == expected
        if expected:
            assert jobs[RETRY_JOB_ID].trigger.interval == dt.timedelta(seconds=7)


def test_without_workers_a_stored_retry_job_is_removed(committed_engine: Engine, tmp_path: Path) -> None:
    from service.delivery.scheduler import RETRY_JOB_ID, build_scheduler

    clock = ManualClock(dt.datetime.now(dt.UTC))
    with_workers = Settings(var_dir=tmp_path / "var", broker_url="amqp://guest:guest@127.0.0.1:5672//")
    stored = build_scheduler(Runtime(committed_engine, with_workers, clock, "a", threading.Event()))
    stored.start(paused=True)  # the jobs are written to the job store, none runs
    assert stored.get_job(RETRY_JOB_ID) is not None
    stored.shutdown()
    # Restarted without BROKER_URL: the passes retry, and the stored retry job is gone.
    service = SchedulerService(
        committed_engine, Settings(var_dir=tmp_path / "var", semantic=False), clock, instance="b"
    )
    try:
        assert service.step() and service.scheduler is not None
        assert service.scheduler.get_job(RETRY_JOB_ID) is None
    finally:
        service.shutdown()
