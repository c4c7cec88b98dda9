"""The scheduler lease: one holder at a time, taken over when the holder stops renewing."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine

from service.delivery import lease

T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=60)


def test_one_holder_until_it_expires_then_another_takes_over(committed_engine: Engine) -> None:
    eng = committed_engine
    assert lease.acquire(eng, "scheduler", "a", now=T0, ttl=TTL)
    assert not lease.acquire(eng, "scheduler", "b", now=T0 + dt.timedelta(seconds=30), ttl=TTL)
    # a renews: b still cannot take it at the old expiry time.
    assert lease.acquire(eng, "scheduler", "a", now=T0 + dt.timedelta(seconds=40), ttl=TTL)
    assert not lease.acquire(eng, "scheduler", "b", now=T0 + dt.timedelta(seconds=61), ttl=TTL)
    # a dies (stops renewing): once the lease expires, b takes over and a cannot renew.
    later = T0 + dt.timedelta(seconds=101)
    assert lease.acquire(eng, "scheduler", "b", now=later, ttl=TTL)
    assert not lease.acquire(eng, "scheduler", "a", now=later + dt.timedelta(seconds=1), ttl=TTL)
    info = lease.current(eng, "scheduler")
    assert info is not None and info.holder == "b" and info.expires_at == later + TTL
    # A stale holder's release does not drop the new holder's lease.
    assert not lease.release(eng, "scheduler", "a")
    assert lease.release(eng, "scheduler", "b")
    assert lease.current(eng, "scheduler") is None
    # Released: taken at once, no waiting for an expiry.
    assert lease.acquire(eng, "scheduler", "a", now=later + dt.timedelta(seconds=2), ttl=TTL)


def test_leases_are_independent_by_name(committed_engine: Engine) -> None:
    assert lease.acquire(committed_engine, "scheduler", "a", now=T0, ttl=TTL)
    assert lease.acquire(committed_engine, "other", "b", now=T0, ttl=TTL)


def test_racing_instances_get_exactly_one_winner(committed_engine: Engine) -> None:
    # Eight instances race for a free lease, then for an expired one: one winner each time.
    for round_now in (T0, T0 + dt.timedelta(minutes=5)):
        barrier = threading.Barrier(8)
        winners: list[str] = []

        def contend(
            name: str,
            now: dt.datetime = round_now,
            barrier: threading.Barrier = barrier,
            winners: list[str] = winners,
        ) -> None:
            barrier.wait()
            if lease.acquire(committed_engine, "scheduler", name, now=now, ttl=TTL):
                winners.append(name)

        threads = [threading.Thread(target=contend, args=(f"i{n}-{round_now.minute}",)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1, winners
        info = lease.current(committed_engine, "scheduler")
        assert info is not None and info.holder == winners[0]


def test_instance_names_are_unique() -> None:
    assert lease.instance_name() != lease.instance_name()
