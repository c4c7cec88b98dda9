"""Prometheus metrics of the delivery path: the database gauges and the per-process counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from service.channels.base import DeliveryError
from service.clock import ManualClock
from service.config import Settings
from service.delivery.dispatch import run_dispatch
from service.delivery.metrics import registry_for
from tests.scheduler.helpers import RecordingTransport, email_channel, subscribe, utc


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", send_empty_digests=True, smtp_rate_per_s=1e6, semantic=False)


def samples(engine: Engine, clock: ManualClock) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    text = generate_latest(registry_for(engine, now=clock.now)).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_gauges_say_what_was_sent_what_waits_and_how_late(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    for n in range(3):
        subscribe(committed_engine, f"m{n}@example.org")
    channel = email_channel(settings, transport, clock)
    run_dispatch(committed_engine, settings, clock, instance="m", channel=channel)
    clock.set(utc(2026, 11, 23, 8, 5))
    before = samples(committed_engine, clock)
    assert before[("paperboy_due_subscriptions", ())] == 3
    assert before[("paperboy_queue_lag_seconds", ())] == 300  # due at 08:00, now 08:05
    transport.failures = [DeliveryError("relay busy", permanent=False)]
    run_dispatch(committed_engine, settings, clock, instance="m", channel=channel)
    after = samples(committed_engine, clock)
    assert after[("paperboy_digests_24h", (("channel", "email"), ("status", "sent")))] == 2
    assert after[("paperboy_digests_24h", (("channel", "email"), ("status", "retry")))] == 1
    assert after[("paperboy_retrying", ())] == 1
    assert after[("paperboy_due_subscriptions", ())] == 0 and after[("paperboy_queue_lag_seconds", ())] == 0
    assert after[("paperboy_digest_outcomes_total", (("status", "sent"),))] >= 2
    assert after[("paperboy_pass_seconds_count", ())] >= 2
