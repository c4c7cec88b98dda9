"""APScheduler wiring, nothing else: two fixed jobs, their job store, and who may run them.

Per-subscriber timing is data (subscriptions.next_digest_at, see service.delivery.dispatch), so APScheduler
only runs two fixed jobs, each a whole pass that is safe to repeat:

- `paperboy-ingest`: scan the drop folder and poll HTTP sources, every INGEST_INTERVAL_S;
- `paperboy-dispatch`: deliver due digests and due retries, every DISPATCH_INTERVAL_S;
- `paperboy-retries`, with workers only (BROKER_URL): enqueue the retries that came due, every
  RETRY_INTERVAL_S, so a retry waiting in the database does not wait for the next pass as well.

Both live in the SQLAlchemyJobStore in paperboy's own database, added with explicit ids and
replace_existing=True so a restart updates them instead of piling up copies. Choices, on purpose:

- coalesce=True: after a pause, the runs missed collapse into one (a pass catches up on everything);
- max_instances=1: a slow pass is never overlapped by the next one;
- misfire_grace_time = the job's interval: a run late by less than one interval still happens; a later
  one is dropped, because the next run is due within an interval and does the same work;
- next_run_time=now when the jobs are (re)added: an instance that takes over runs a pass at once.

Only the holder of the `scheduler` lease (service.delivery.lease) runs a scheduler; the others wait in
standby and take over when the holder stops renewing. SIGTERM (see service.cli.run) sets `stop`: the
dispatch pass stops claiming new subscriptions, the scheduler waits for the jobs in flight,
and the lease is released.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from service.clock import Clock
from service.config import Settings
from service.delivery import lease
from service.digest.compose import Ranker

log = logging.getLogger("paperboy.scheduler")

INGEST_JOB_ID = "paperboy-ingest"
DISPATCH_JOB_ID = "paperboy-dispatch"
RETRY_JOB_ID = "paperboy-retries"
JOBS_TABLE = "apscheduler_jobs"


@dataclasses.dataclass
class Runtime:
    """What the jobs need; kept in this process, found by instance name (job kwargs are pickled)."""

    engine: Engine
    settings: Settings
    clock: Clock
    instance: str
    stop: threading.Event
    # One ranker for the service's lifetime: it keeps the percolator screen of every stored interest
    # between passes (the dispatch job has max_instances=1, so it is used by one thread at a time).
    ranker: Ranker | None = None


_runtimes: dict[str, Runtime] = {}


def ingest_job(instance: str) -> None:
    """The `paperboy-ingest` job: one ingest pass."""
    from service.sources import run_ingest_pass

    rt = _runtimes.get(instance)
    if rt is None or rt.stop.is_set():
        return
    run_ingest_pass(rt.engine, rt.settings, rt.clock, should_stop=rt.stop.is_set)


def dispatch_job(instance: str) -> None:
    """The `paperboy-dispatch` job: one dispatch pass."""
    from service.delivery.dispatch import run_dispatch

    rt = _runtimes.get(instance)
    if rt is None or rt.stop.is_set():
        return
    if rt.settings.broker_url:  # the workers compose and deliver; the clock only claims and enqueues
        from service.delivery.tasks import configure, enqueue_pass

        configure(rt.settings)
        enqueue_pass(rt.engine, rt.settings, rt.clock.now())
        return
    if rt.ranker is None:
        from service.matching.batch import ScreenedRanker

        rt.ranker = ScreenedRanker(rt.settings)
    run_dispatch(
        rt.engine,
        rt.settings,
        rt.clock,
        instance=rt.instance,
        ranker=rt.ranker,
        should_stop=rt.stop.is_set,
    )


def retry_job(instance: str) -> None:
    """The `paperboy-retries` job (with workers): enqueue the retries that came due."""
    from service.delivery.tasks import configure, enqueue_retries

    rt = _runtimes.get(instance)
    if rt is None or rt.stop.is_set() or not rt.settings.broker_url:
        return  # without workers (a job stored while there were some), each pass retries
    configure(rt.settings)
    enqueue_retries(rt.engine, rt.settings, rt.clock.now())


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    """A scheduler with the two jobs in the database job store (not started)."""
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=rt.engine, tablename=JOBS_TABLE)},
        # One thread per job: the jobs may run side by side, never two of the same.
        executors={"default": ThreadPoolExecutor(max_workers=3)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=dt.UTC,
    )
    now = rt.clock.now()
    jobs = [
        (INGEST_JOB_ID, "service.delivery.scheduler:ingest_job", rt.settings.ingest_interval_s),
        (DISPATCH_JOB_ID, "service.delivery.scheduler:dispatch_job", rt.settings.dispatch_interval_s),
    ]
    if rt.settings.broker_url:
        jobs.append((RETRY_JOB_ID, "service.delivery.scheduler:retry_job", rt.settings.retry_interval_s))
    for job_id, func, interval in jobs:
        scheduler.add_job(
            func,
            trigger=IntervalTrigger(seconds=interval, timezone=dt.UTC),
            id=job_id,
            name=job_id,
            kwargs={"instance": rt.instance},
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=interval,
            next_run_time=now,
        )
    return scheduler


class SchedulerService:
    """Holds the scheduler lease and runs the scheduler while it holds it; standby otherwise."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        instance: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.runtime = Runtime(
            engine, settings, clock, instance or lease.instance_name(), stop or threading.Event()
        )
        self.scheduler: BackgroundScheduler | None = None
        self.ttl = dt.timedelta(seconds=settings.lease_seconds)

    @property
    def instance(self) -> str:
        return self.runtime.instance

    @property
    def stop(self) -> threading.Event:
        return self.runtime.stop

    @property
    def leading(self) -> bool:
        return self.scheduler is not None

    def step(self) -> bool:
        """Take or renew the lease; start or stop the scheduler to match. True while leading."""
        rt = self.runtime
        try:
            held = lease.acquire(
                rt.engine, lease.SCHEDULER_LEASE, rt.instance, now=rt.clock.now(), ttl=self.ttl
            )
        except Exception:  # the database is unreachable: no lease can be proven, so do not lead
            log.exception("could not renew the scheduler lease")
            held = False
        if held and self.scheduler is None:
            log.info("instance %s holds the scheduler lease; starting jobs", rt.instance)
            _runtimes[rt.instance] = rt
            self.scheduler = build_scheduler(rt)
            self.scheduler.start()
            if not rt.settings.broker_url and self.scheduler.get_job(RETRY_JOB_ID) is not None:
                self.scheduler.remove_job(RETRY_JOB_ID)  # stored while there were workers
        elif not held and self.scheduler is not None:
            log.warning("instance %s lost the scheduler lease; standing by", rt.instance)
            self._stop_scheduler()
        return held

    def run(self, *, max_seconds: float | None = None) -> None:
        """Lead or stand by until `stop` is set (SIGTERM) or `max_seconds` of wall time have passed."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        renew_every = max(self.ttl.total_seconds() / 3, 0.05)
        try:
            while not self.stop.is_set():
                self.step()
                wait = renew_every if deadline is None else min(renew_every, deadline - time.monotonic())
                if wait <= 0 or self.stop.wait(wait):
                    break
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop taking new work, let the jobs in flight finish, give the lease back."""
        self.stop.set()
        self._stop_scheduler()
        try:
            lease.release(self.runtime.engine, lease.SCHEDULER_LEASE, self.runtime.instance)
        except Exception:  # it expires on its own; a failed release only delays a takeover
            log.exception("could not release the scheduler lease")

    def _stop_scheduler(self) -> None:
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            scheduler.shutdown(wait=True)  # waits for running jobs: sends in flight complete
        _runtimes.pop(self.runtime.instance, None)
