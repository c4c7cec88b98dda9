"""Shared pieces of the tests on real RabbitMQ + PostgreSQL: subscriptions, waiting, worker processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from service.delivery.claims import schedule_new
from service.models import Delivery, Subscription
from tests.digest.helpers import add_paper, add_subscription
from tests.scheduler.helpers import utc

BROKER = os.environ.get("PAPERBOY_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
REPO = Path(__file__).resolve().parents[2]
T0 = utc(2026, 11, 23, 7, 0)
DUE = utc(2026, 11, 23, 8, 1)


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        return True
    except OSError:
        return False


def subscribe_many(engine: Engine, count: int, prefix: str = "w", *, seen: dt.datetime = T0) -> list[int]:
    """`count` subscriptions to one paper, scheduled on the tests' clock (due at DUE).

    A test whose processes read the real clock passes `seen` near it (`recently()`): a paper seen at
    T0 falls out of a first digest's 7-day lookback a week after T0, and its digests come out empty.
    """
    with Session(engine) as s, s.begin():
        if s.scalar(select(func.count()).select_from(Subscription)) == 0:
            add_paper(
                s,
                "arxiv:2611.00001",
                "Sparse attention for long documents",
                "Attention made sparse.",
                seen=seen,
            )
        ids = [add_subscription(s, f"{prefix}{n}@example.org", "sparse attention") for n in range(count)]
        s.execute(update(Subscription).where(Subscription.id.in_(ids)).values(next_digest_at=None))
    schedule_new(engine, T0)
    return ids


def recently() -> dt.datetime:
    """An hour before the real clock: when a paper is new for processes that read that clock."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def wait_until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not done within {seconds} s")


def sent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) or 0


def paperboy(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`paperboy ARGS` in its own process group (kill -9 reaches its children too)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "paperboy"), *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    # The node name is the test's own (its queue prefix): a worker another run left behind holds its
    # name's exclusive pidbox queue, and a new worker of that name would stop at once (RESOURCE_LOCKED).
    node = f"{name}-{env.get('QUEUE_PREFIX', '').strip('-')}@%h"
    return paperboy(env, "worker", "-c", "1", "-n", node, "-l", "WARNING")


def kill(*procs: subprocess.Popen[bytes] | None) -> None:
    """kill -9 each process group still running, and reap it."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
