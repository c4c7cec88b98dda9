"""Crash recovery: a dead instance's claims come back at once; a delivery it left between send and
mark is shown at once and, by STUCK_DELIVERY_POLICY, held or re-sent under the same Message-ID."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

import service.delivery.batch as batch
from service.cli.status import collect_status
from service.clock import ManualClock
from service.config import Settings
from service.delivery.claims import claim_many
from service.delivery.dispatch import DispatchReport, run_dispatch
from service.delivery.recovery import ALIVE_S, Heartbeat
from tests.scheduler.helpers import RecordingTransport, deliveries, email_channel, subscribe, utc

DUE = utc(2026, 11, 23, 8, 1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", send_empty_digests=True, smtp_rate_per_s=1e6, semantic=False)


def tick(
    engine: Engine, settings: Settings, clock: ManualClock, transport: RecordingTransport
) -> DispatchReport:
    return run_dispatch(
        engine, settings, clock, instance="live", channel=email_channel(settings, transport, clock)
    )


def _scheduled(engine: Engine, settings: Settings, transport: RecordingTransport) -> tuple[int, ManualClock]:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    sid = subscribe(engine, "r@example.org")
    tick(engine, settings, clock, transport)
    clock.set(DUE)
    return sid, clock


def test_a_dead_instances_claim_is_delivered_by_the_next_pass_at_once(
    committed_engine: Engine, settings: Settings
) -> None:
    transport = RecordingTransport()
    sid, clock = _scheduled(committed_engine, settings, transport)
    _, won = claim_many(committed_engine, [sid], clock.now(), owner="gone:123:deadbeef")  # then kill -9
    assert won == {sid}
    clock.advance(minutes=1)  # not the ten minutes of the claim
    report = tick(committed_engine, settings, clock, transport)
    assert [(o.period, o.status) for o in report.outcomes] == [("2026-11-23", "sent")]
    assert len(transport.sent) == 1


def test_a_live_instances_claim_is_left_alone(committed_engine: Engine, settings: Settings) -> None:
    transport = RecordingTransport()
    sid, clock = _scheduled(committed_engine, settings, transport)
    with Heartbeat(committed_engine, "busy:1:cafe", now=clock.now) as heartbeat:
        claim_many(committed_engine, [sid], clock.now(), owner="busy:1:cafe")
        clock.advance(minutes=1)
        heartbeat.beat()  # what its thread does every few seconds
        assert tick(committed_engine, settings, clock, transport).outcomes == []
    assert transport.sent == []


def _crash_between_send_and_mark(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, ManualClock, RecordingTransport]:
    transport = RecordingTransport()
    sid, clock = _scheduled(engine, settings, transport)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed before marking")

    monkeypatch.setattr(batch, "mark_sent_now", crash)  # a pass marks each send itself
    run_dispatch(
        engine, settings, clock, instance="doomed", channel=email_channel(settings, transport, clock)
    )
    monkeypatch.undo()
    assert [d.status for d in deliveries(engine, sid)] == ["claimed"] and len(transport.sent) == 1
    return sid, clock, transport


def test_status_shows_a_delivery_its_dead_owner_left_claimed_at_once(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, clock, _ = _crash_between_send_and_mark(committed_engine, settings, monkeypatch)
    later = clock.now() + dt.timedelta(seconds=ALIVE_S + 1)  # not an hour
    attention = collect_status(committed_engine, later)["needs_attention"]
    assert [a["subscription"] for a in attention] == [sid]
    assert "never marked" in attention[0]["why"]


@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_the_stuck_delivery_policy_holds_or_resends_with_the_same_message_id(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    settings = settings.model_copy(update={"stuck_delivery_policy": policy, "stuck_delivery_delay_s": 300})
    sid, clock, transport = _crash_between_send_and_mark(committed_engine, settings, monkeypatch)
    clock.advance(minutes=2)  # stuck, but not for the stated delay yet
    tick(committed_engine, settings, clock, transport)
    assert len(transport.sent) == 1
    clock.advance(minutes=4)
    tick(committed_engine, settings, clock, transport)
    if policy == "hold":
        assert len(transport.sent) == 1
        assert [d.status for d in deliveries(committed_engine, sid)] == ["claimed"]
    else:
        assert len(transport.sent) == 2 and transport.sent[0] == transport.sent[1]  # same Message-ID
        assert [d.status for d in deliveries(committed_engine, sid)] == ["sent"]


def test_status_says_how_long_the_oldest_due_digest_has_waited(
    committed_engine: Engine, settings: Settings
) -> None:
    transport = RecordingTransport()
    _scheduled(committed_engine, settings, transport)
    data = collect_status(committed_engine, utc(2026, 11, 23, 8, 10))
    assert data["due_now"] == 1 and data["queue_lag_s"] == 600  # due at 08:00
