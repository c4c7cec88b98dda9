"""Two dispatchers, each with its own engine, race over the same database: every digest goes out once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.channels.base import DeliveryError
from service.clock import ManualClock
from service.config import Settings
from service.db import make_engine
from service.delivery.dispatch import DispatchReport, run_dispatch
from service.models import Delivery
from tests.scheduler.helpers import RecordingTransport, email_channel, subscribe, utc

SUBSCRIPTIONS = 32
DAYS = 2


@pytest.fixture
def engines(database_url: str, committed_engine: Engine) -> Iterator[tuple[Engine, Engine]]:
    """Two more engines on the same database: two instances' connection pools."""
    pair = (make_engine(database_url), make_engine(database_url))
    yield pair
    for eng in pair:
        eng.dispose()


def test_two_dispatchers_never_send_a_digest_twice(
    committed_engine: Engine, engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",
        send_empty_digests=True,
        smtp_rate_per_s=1e6,
        delivery_retry_base_s=60,
        delivery_retry_max_s=60,
        delivery_max_attempts=5,
    )
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
    ids = [
        subscribe(committed_engine, f"r{n}@example.org", send_time="06:00", timezone=zones[n % len(zones)])
        for n in range(SUBSCRIPTIONS)
    ]
    clock = ManualClock(utc(2026, 11, 22, 0, 0))
    # The same transport double behind both instances: it sees every message either one sends.
    # The first sends fail transiently, so retry rows are raced over too.
    transport = RecordingTransport(failures=[DeliveryError("451 busy", permanent=False)] * 5)
    reports: list[DispatchReport] = []

    def instance(name: str, engine: Engine, barrier: threading.Barrier) -> None:
        barrier.wait()
        report = run_dispatch(
            engine, settings, clock, instance=name, channel=email_channel(settings, transport, clock)
        )
        reports.append(report)

    # Every two hours for two days, both instances run a pass at the same moment.
    while clock.now() < utc(2026, 11, 22 + DAYS, 0, 0):
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=instance, args=(f"instance-{i}", eng, barrier))
            for i, eng in enumerate(engines)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        clock.advance(hours=2)

    assert not [e for r in reports for e in r.errors]
    counts = transport.counts()
    assert counts and max(counts.values()) == 1, counts.most_common(3)  # no Message-ID twice
    with Session(committed_engine) as s:
        sent = s.execute(
            select(Delivery.subscription_id, func.count())
            .where(Delivery.status == "sent")
            .group_by(Delivery.subscription_id)
        ).all()
        statuses = set(s.scalars(select(Delivery.status)))
    # Each subscription got one digest per local day whose 06:00 fell in the window: two each.
    got = dict(sent)
    assert got == dict.fromkeys(ids, DAYS)
    assert statuses == {"sent"}
    assert len(transport.sent) == sum(got.values())
