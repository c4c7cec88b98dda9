"""A batch stopped by an error after some sends: nothing lost, nothing sent twice, recovery settles it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import service.delivery.batch as batch
from service.channels.base import DeliveryError
from service.clock import ManualClock
from service.config import Settings
from service.delivery.dispatch import DispatchReport, run_dispatch
from service.delivery.recovery import ALIVE_S, stuck_deliveries
from tests.scheduler.helpers import RecordingTransport, deliveries, email_channel, subscribe, utc


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", send_empty_digests=True, smtp_rate_per_s=1e6, semantic=False)


def tick(
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    transport: RecordingTransport,
    instance: str = "live",
) -> DispatchReport:
    return run_dispatch(
        engine, settings, clock, instance=instance, channel=email_channel(settings, transport, clock)
    )


@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_an_error_mid_batch_after_some_sends_loses_nothing_and_sends_nothing_twice(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    settings = settings.model_copy(update={"stuck_delivery_policy": policy, "stuck_delivery_delay_s": 0})
    transport = RecordingTransport()
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    ids = [subscribe(committed_engine, f"r{n}@example.org") for n in range(5)]
    tick(committed_engine, settings, clock, transport)  # scheduled for 08:00
    clock.set(utc(2026, 11, 23, 8, 1))
    real, marked = batch.mark_sent_now, []

    def dies_at_the_third_mark(*args: object, **kwargs: object) -> None:
        if len(marked) == 2:
            raise RuntimeError("database went away")
        marked.append(args)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "mark_sent_now", dies_at_the_third_mark)
    report = tick(committed_engine, settings, clock, transport, instance="doomed")
    monkeypatch.undo()
    assert report.count("sent") == 2 and len(report.errors) == 3
    assert len(transport.sent) == 3  # the third went out and was never marked
    statuses = {sid: [d.status for d in deliveries(committed_engine, sid)] for sid in ids}
    # The two never handed to the relay were given back: no row, so nothing for an operator to settle.
    assert sorted(statuses.values()) == [[], [], ["claimed"], ["sent"], ["sent"]]
    unmarked = next(sid for sid, s in statuses.items() if s == ["claimed"])

    clock.advance(seconds=ALIVE_S + 1)  # "doomed" is gone: its heartbeat stopped with its pass
    with Session(committed_engine) as session:
        assert [s.subscription_id for s in stuck_deliveries(session, clock.now())] == [unmarked]
    again = tick(committed_engine, settings, clock, transport)
    counts = transport.counts()
    assert len(counts) == 5  # every digest went out: none lost
    if policy == "hold":
        assert max(counts.values()) == 1  # none twice; the unmarked one waits for an operator
        assert [d.status for d in deliveries(committed_engine, unmarked)] == ["claimed"]
    else:  # only the one in flight goes again, under the same Message-ID
        assert sorted(counts.values()) == [1, 1, 1, 1, 2]
        assert [d.status for d in deliveries(committed_engine, unmarked)] == ["sent"]
    assert not again.errors
    for sid in set(ids) - {unmarked}:
        assert [d.status for d in deliveries(committed_engine, sid)] == ["sent"]


def test_a_failed_send_in_a_batch_is_a_retry_and_stops_nothing_else(
    committed_engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RecordingTransport(failures=[DeliveryError("451 try later", permanent=False)])
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    ids = [subscribe(committed_engine, f"r{n}@example.org") for n in range(3)]
    tick(committed_engine, settings, clock, transport)
    clock.set(utc(2026, 11, 23, 8, 1))
    with caplog.at_level(logging.ERROR):
        report = tick(committed_engine, settings, clock, transport)
    assert sorted(o.status for o in report.outcomes) == ["retry", "sent", "sent"] and not report.errors
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert sorted(d.status for sid in ids for d in deliveries(committed_engine, sid)) == [
        "retry",
        "sent",
        "sent",
    ]


class Killed(BaseException):
    """kill -9 in the middle of a send: nothing after it runs (no except, no finally that writes)."""


@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_a_kill_mid_chunk_leaves_only_the_digest_in_flight_for_the_policy_the_rest_go_once(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    settings = settings.model_copy(update={"stuck_delivery_policy": policy, "stuck_delivery_delay_s": 0})
    transport = RecordingTransport()
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    ids = [subscribe(committed_engine, f"r{n}@example.org") for n in range(5)]
    tick(committed_engine, settings, clock, transport)  # scheduled for 08:00
    clock.set(utc(2026, 11, 23, 8, 1))
    real_send = transport.send

    def dies_after_the_third_send(*args: object) -> None:
        real_send(*args)  # type: ignore[arg-type]
        if len(transport.sent) == 3:
            raise Killed

    monkeypatch.setattr(transport, "send", dies_after_the_third_send)
    # A killed process writes nothing more: no marks of the chunk's other effects, no claims given back.
    monkeypatch.setattr(batch, "release_unsent", lambda *args, **kwargs: None)
    monkeypatch.setattr(batch, "note_sent", lambda *args, **kwargs: None)
    with pytest.raises(Killed):
        tick(committed_engine, settings, clock, transport, instance="doomed")
    monkeypatch.undo()
    statuses = sorted(d.status for sid in ids for d in deliveries(committed_engine, sid))
    assert statuses == ["claimed", "claimed", "claimed", "sent", "sent"]  # one in flight, two never sent

    clock.advance(seconds=ALIVE_S + 1)
    again = tick(committed_engine, settings, clock, transport)
    counts = transport.counts()
    assert len(counts) == 5 and not again.errors  # the two never handed over went out: none lost
    in_flight = [sid for sid in ids if [d.status for d in deliveries(committed_engine, sid)] == ["claimed"]]
    if policy == "hold":
        assert max(counts.values()) == 1  # none twice; only the one in flight waits for an operator
        assert len(in_flight) == 1
        with Session(committed_engine) as session:
            assert [s.subscription_id for s in stuck_deliveries(session, clock.now())] == in_flight
    else:  # the one in flight goes again under its Message-ID; nothing else twice
        assert sorted(counts.values()) == [1, 1, 1, 1, 2] and in_flight == []
