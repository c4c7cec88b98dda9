"""Dispatch passes driven by an injected clock: on time in every zone, once per period, retried."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from service.channels.base import DeliveryError
from service.clock import ManualClock
from service.config import Settings
from service.delivery import dispatch
from service.delivery.dispatch import DispatchReport, run_dispatch
from service.models import Subscription
from tests.scheduler.helpers import (
    RecordingTransport,
    deliveries,
    email_channel,
    subscribe,
    subscription,
    utc,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        send_empty_digests=True,  # timing tests need no papers: an empty digest is still a real send
        smtp_rate_per_s=1e6,
        delivery_retry_base_s=600,
        delivery_retry_max_s=3600,
        delivery_max_attempts=3,
    )


def tick(
    engine: Engine, settings: Settings, clock: ManualClock, transport: RecordingTransport
) -> DispatchReport:
    return run_dispatch(
        engine, settings, clock, instance="test", channel=email_channel(settings, transport, clock)
    )


def walk(
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    transport: RecordingTransport,
    until: dt.datetime,
    step: dt.timedelta,
) -> None:
    while clock.now() < until:
        clock.advance(step)
        tick(engine, settings, clock, transport)


def test_daily_digest_through_spring_forward_and_fall_back(
    committed_engine: Engine, settings: Settings
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock = ManualClock(utc(2026, 3, 25, 12, 45))  # hourly ticks at :45, as a cron job might run
    transport = RecordingTransport()
    sid = subscribe(committed_engine, "anna@example.org", send_time="02:30", timezone="Europe/Berlin")
    assert tick(committed_engine, settings, clock, transport).scheduled == 1
    assert subscription(committed_engine, sid).next_digest_at == utc(2026, 3, 26, 1, 30)
    walk(committed_engine, settings, clock, transport, utc(2026, 4, 1, 12, 0), dt.timedelta(hours=1))
    sent = [d for d in deliveries(committed_engine, sid) if d.status == "sent"]
    assert [d.period for d in sent] == [f"2026-03-{day:02d}" for day in range(26, 32)] + ["2026-04-01"]
    for d in sent:
        local = d.sent_at.astimezone(berlin)
        # 02:30 local, or 03:30 on the 29th when 02:30 does not exist; always within the tick after it.
        expected = dt.time(3, 30) if d.period == "2026-03-29" else dt.time(2, 30)
        assert local.date().isoformat() == d.period
        assert dt.time(expected.hour, expected.minute) <= local.time() < dt.time(expected.hour + 1, 0)
    assert len(transport.sent) == len(sent)  # nothing sent twice

    # Autumn: 02:30 happens twice on 25 Oct; the digest goes out once, at the first.
    clock.set(utc(2026, 10, 23, 12, 45))
    tick(committed_engine, settings, clock, transport)  # catch-up for the months skipped: one digest
    before = len(transport.sent)
    walk(committed_engine, settings, clock, transport, utc(2026, 10, 28, 12, 0), dt.timedelta(hours=1))
    autumn = [d.period for d in deliveries(committed_engine, sid) if d.period >= "2026-10-24"]
    assert autumn == ["2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27", "2026-10-28"]
    assert len(transport.sent) - before == 5


@pytest.mark.parametrize(
    ("cadence", "weekday", "expected"),
    [
        (
            "weekdays",
            None,
            ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-30"],
        ),
        ("weekly", "wed", ["2026-W48", "2026-W49", "2026-W50"]),
    ],
)
def test_weekdays_and_weekly_cadences_over_weeks(
    committed_engine: Engine, settings: Settings, cadence: str, weekday: str | None, expected: list[str]
) -> None:
    clock = ManualClock(utc(2026, 11, 22, 20, 0))  # Sunday evening in New York
    transport = RecordingTransport()
    sid = subscribe(
        committed_engine,
        "bo@example.org",
        cadence=cadence,
        weekday=weekday,
        send_time="07:15",
        timezone="America/New_York",
    )
    tick(committed_engine, settings, clock, transport)
    end = utc(2026, 11, 30, 23, 0) if cadence == "weekdays" else utc(2026, 12, 10, 23, 0)
    walk(committed_engine, settings, clock, transport, end, dt.timedelta(hours=2))
    rows = deliveries(committed_engine, sid)
    assert [d.period for d in rows] == expected
    assert all(d.status == "sent" for d in rows)
    assert sorted(transport.counts().values()) == [1] * len(expected)


def test_catch_up_after_downtime_sends_the_latest_period_once(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 2, 9, 0))
    transport = RecordingTransport()
    sid = subscribe(committed_engine, "cy@example.org", send_time="08:00")
    tick(committed_engine, settings, clock, transport)  # scheduled for 3 Nov 08:00
    clock.set(utc(2026, 11, 7, 10, 0))  # down for four days: 3, 4, 5, 6 and 7 Nov were missed
    report = tick(committed_engine, settings, clock, transport)
    assert [(o.period, o.status) for o in report.outcomes] == [("2026-11-07", "sent")]
    for _ in range(3):  # further ticks at the same moment, or soon after: nothing more
        clock.advance(minutes=5)
        assert tick(committed_engine, settings, clock, transport).outcomes == []
    assert [d.period for d in deliveries(committed_engine, sid)] == ["2026-11-07"]
    assert subscription(committed_engine, sid).next_digest_at == utc(2026, 11, 8, 8, 0)
    assert len(transport.sent) == 1


def test_transient_failure_is_retried_on_later_ticks_until_it_succeeds(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport(failures=[DeliveryError("451 try later", permanent=False)] * 2)
    sid = subscribe(committed_engine, "di@example.org", send_time="08:00")
    tick(committed_engine, settings, clock, transport)
    walk(committed_engine, settings, clock, transport, utc(2026, 11, 23, 12, 0), dt.timedelta(minutes=5))
    [row] = deliveries(committed_engine, sid)
    assert (row.period, row.status, row.attempts) == ("2026-11-23", "sent", 3)
    assert transport.attempts == 3 and len(transport.sent) == 1
    # The retries waited for their backoff (600 s, then 1200 s, each with jitter in [50%, 100%]).
    assert utc(2026, 11, 23, 8, 0) + dt.timedelta(seconds=900) <= row.sent_at <= utc(2026, 11, 23, 9, 0)


def test_transient_failure_stops_at_the_attempt_limit_and_the_next_period_still_goes(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport(fail_always=DeliveryError("421 service not available", permanent=False))
    sid = subscribe(committed_engine, "ed@example.org", send_time="08:00")
    tick(committed_engine, settings, clock, transport)
    walk(committed_engine, settings, clock, transport, utc(2026, 11, 23, 23, 0), dt.timedelta(minutes=10))
    [row] = deliveries(committed_engine, sid)
    assert (row.status, row.attempts) == ("failed", settings.delivery_max_attempts)
    assert "421" in (row.last_error or "")
    assert transport.attempts == settings.delivery_max_attempts  # not one more
    transport.fail_always = None
    walk(committed_engine, settings, clock, transport, utc(2026, 11, 24, 9, 0), dt.timedelta(minutes=10))
    assert [(d.period, d.status) for d in deliveries(committed_engine, sid)] == [
        ("2026-11-23", "failed"),
        ("2026-11-24", "sent"),
    ]


def test_paused_unsubscribed_and_pending_subscriptions_are_left_alone(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    ids = [subscribe(committed_engine, f"f{n}@example.org") for n in range(3)]
    with Session(committed_engine) as s, s.begin():
        s.execute(update(Subscription).where(Subscription.id == ids[0]).values(paused=True))
        s.execute(update(Subscription).where(Subscription.id == ids[1]).values(status="unsubscribed"))
    tick(committed_engine, settings, clock, transport)
    walk(committed_engine, settings, clock, transport, utc(2026, 11, 24, 9, 0), dt.timedelta(hours=1))
    assert [len(deliveries(committed_engine, i)) for i in ids] == [0, 0, 2]


def test_a_broken_schedule_is_flagged_not_crashed_on(committed_engine: Engine, settings: Settings) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    good, bad = subscribe(committed_engine, "g@example.org"), subscribe(committed_engine, "h@example.org")
    with Session(committed_engine) as s, s.begin():
        s.execute(update(Subscription).where(Subscription.id == bad).values(timezone="Mars/Olympus"))
    transport = RecordingTransport()
    tick(committed_engine, settings, clock, transport)
    clock.advance(hours=2)
    tick(committed_engine, settings, clock, transport)
    assert "Mars/Olympus" in (subscription(committed_engine, bad).needs_attention or "")
    assert subscription(committed_engine, bad).next_digest_at is None
    assert len(deliveries(committed_engine, good)) == 1


def test_only_one_claim_wins_and_a_lapsed_claim_is_picked_up(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    sid = subscribe(committed_engine, "i@example.org")
    tick(committed_engine, settings, clock, transport)
    now = clock.advance(hours=1, minutes=1)
    until = dispatch.claim(committed_engine, sid, now)
    assert until == now + dispatch.CLAIM
    assert dispatch.claim(committed_engine, sid, now) is None
    # The claimer "dies" before delivering: no pass touches the subscription until its claim lapses.
    assert tick(committed_engine, settings, clock, transport).outcomes == []
    clock.set(until)
    report = tick(committed_engine, settings, clock, transport)
    assert [(o.period, o.status) for o in report.outcomes] == [("2026-11-23", "sent")]


def test_a_crash_after_sending_but_before_advancing_does_not_send_twice(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    sid = subscribe(committed_engine, "j@example.org")
    tick(committed_engine, settings, clock, transport)
    clock.advance(hours=1, minutes=1)
    tick(committed_engine, settings, clock, transport)
    # Put the subscription back as if the sender had died before moving next_digest_at on.
    with Session(committed_engine) as s, s.begin():
        s.execute(
            update(Subscription).where(Subscription.id == sid).values(next_digest_at=utc(2026, 11, 23, 8, 0))
        )
    clock.advance(minutes=5)
    report = tick(committed_engine, settings, clock, transport)
    assert [o.status for o in report.outcomes] == ["skipped"]
    assert len(transport.sent) == 1
    assert subscription(committed_engine, sid).next_digest_at == utc(2026, 11, 24, 8, 0)


def test_stop_request_ends_the_pass_before_the_next_subscription(
    committed_engine: Engine, settings: Settings
) -> None:
    clock = ManualClock(utc(2026, 11, 23, 7, 0))
    transport = RecordingTransport()
    for n in range(3):
        subscribe(committed_engine, f"k{n}@example.org")
    tick(committed_engine, settings, clock, transport)
    clock.advance(hours=2)
    calls = []

    def stop_after_first() -> bool:
        calls.append(1)
        return len(calls) > 1

    report = run_dispatch(
        committed_engine,
        settings,
        clock,
        instance="t",
        channel=email_channel(settings, transport, clock),
        should_stop=stop_after_first,
    )
    assert report.stopped and len(report.outcomes) == 1 and len(transport.sent) == 1
    # The rest go out on the next pass.
    assert len(tick(committed_engine, settings, clock, transport).outcomes) == 2
