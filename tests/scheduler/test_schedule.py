"""Schedules walked through days, weeks and DST changes: no sleeping, only instants."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from service.clock import ManualClock
from service.delivery.schedule import (
    Schedule,
    ScheduleError,
    latest_slot,
    next_send_at,
    period_at,
    slots_between,
)

UTC = dt.UTC


def at(zone: str, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def test_daily_period_is_the_local_date_not_the_utc_date() -> None:
    tokyo = Schedule("daily", dt.time(7, 0), "Asia/Tokyo")
    # 23:30 UTC on the 22nd is 08:30 on the 23rd in Tokyo: the 23rd's digest (07:00) is due.
    instant = dt.datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert period_at(tokyo, instant) == "2026-11-23"
    assert next_send_at(tokyo, instant) == at("Asia/Tokyo", 2026, 11, 24, 7, 0)
    # One minute before 07:00 local, yesterday's period is still the latest.
    assert period_at(tokyo, at("Asia/Tokyo", 2026, 11, 23, 6, 59)) == "2026-11-22"


def test_weekdays_skip_the_weekend() -> None:
    schedule = Schedule("weekdays", dt.time(9, 0), "America/New_York")
    friday = at("America/New_York", 2026, 11, 20, 9, 0)
    assert period_at(schedule, friday) == "2026-11-20"
    # All weekend the latest period stays Friday's; the next send is Monday 09:00.
    saturday_noon = at("America/New_York", 2026, 11, 21, 12, 0)
    assert period_at(schedule, saturday_noon) == "2026-11-20"
    assert next_send_at(schedule, friday) == at("America/New_York", 2026, 11, 23, 9, 0)
    week = slots_between(schedule, friday, friday + dt.timedelta(days=7))
    assert [s.local_date.weekday() for s in week] == [0, 1, 2, 3, 4]


def test_weekly_period_is_the_iso_week_of_the_chosen_day() -> None:
    schedule = Schedule("weekly", dt.time(8, 0), "Europe/Paris", weekday=4)  # Fridays
    thursday = at("Europe/Paris", 2026, 11, 26, 10, 0)
    assert period_at(schedule, thursday) == "2026-W47"  # last Friday, the 20th
    assert next_send_at(schedule, thursday) == at("Europe/Paris", 2026, 11, 27, 8, 0)
    assert period_at(schedule, at("Europe/Paris", 2026, 11, 27, 8, 0)) == "2026-W48"
    # Across a year boundary the ISO year is used: Friday 1 Jan 2027 is in 2026-W53.
    assert period_at(schedule, at("Europe/Paris", 2027, 1, 1, 9, 0)) == "2026-W53"


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Europe/Berlin", (2026, 3, 26), (2026, 4, 2)),  # spring forward 29 Mar, 02:00 -> 03:00
        ("Europe/Berlin", (2026, 10, 22), (2026, 10, 29)),  # fall back 25 Oct, 03:00 -> 02:00
        ("America/New_York", (2026, 3, 5), (2026, 3, 12)),  # spring forward 8 Mar
        ("America/New_York", (2026, 10, 29), (2026, 11, 5)),  # fall back 1 Nov
        ("Australia/Lord_Howe", (2026, 4, 1), (2026, 4, 8)),  # half-hour DST shift, 5 Apr
    ],
)
@pytest.mark.parametrize("send", [dt.time(0, 30), dt.time(1, 30), dt.time(2, 30), dt.time(8, 0)])
def test_dst_changes_neither_skip_nor_double_a_digest(
    zone: str, start: tuple[int, int, int], end: tuple[int, int, int], send: dt.time
) -> None:
    schedule = Schedule("daily", send, zone)
    begin = dt.datetime(*start, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    finish = dt.datetime(*end, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    slots = slots_between(schedule, begin, finish)
    dates = [s.local_date for s in slots]
    expected = [dt.date(*start) + dt.timedelta(days=i) for i in range((dt.date(*end) - dt.date(*start)).days)]
    assert dates == expected  # exactly one digest per local day
    assert len({s.period for s in slots}) == len(slots)
    # Walk a clock in 15-minute ticks, as the dispatcher does: each period becomes due exactly once.
    clock = ManualClock(begin)
    seen: list[str] = []
    due_at = next_send_at(schedule, clock.now())
    while clock.now() < finish:
        clock.advance(minutes=15)
        if clock.now() >= due_at:
            seen.append(period_at(schedule, clock.now()))
            due_at = next_send_at(schedule, clock.now())
    assert seen == [s.period for s in slots if s.due_at <= clock.now()]


def test_send_time_inside_a_gap_goes_out_the_gap_later() -> None:
    schedule = Schedule("daily", dt.time(2, 30), "Europe/Berlin")
    slot = latest_slot(schedule, at("Europe/Berlin", 2026, 3, 29, 12, 0))
    assert slot.period == "2026-03-29"
    local = slot.due_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute, local.utcoffset()) == (3, 30, dt.timedelta(hours=2))


def test_send_time_inside_a_fold_goes_out_at_its_first_occurrence() -> None:
    schedule = Schedule("daily", dt.time(1, 30), "America/New_York")
    first = at("America/New_York", 2026, 11, 1, 1, 30, fold=0)
    second = at("America/New_York", 2026, 11, 1, 1, 30, fold=1)
    assert second - first == dt.timedelta(hours=1)
    assert next_send_at(schedule, first - dt.timedelta(minutes=1)) == first
    # At the second 01:30 the digest was already due: nothing new, the next one is tomorrow.
    assert period_at(schedule, second) == "2026-11-01"
    assert next_send_at(schedule, second) == at("America/New_York", 2026, 11, 2, 1, 30)


def test_catch_up_after_downtime_is_the_latest_missed_period_only() -> None:
    schedule = Schedule("daily", dt.time(8, 0), "UTC")
    stopped = dt.datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    back = dt.datetime(2026, 11, 6, 10, 0, tzinfo=UTC)  # four digests were missed
    assert len(slots_between(schedule, stopped, back)) == 4
    assert period_at(schedule, back) == "2026-11-06"
    assert next_send_at(schedule, back) == dt.datetime(2026, 11, 7, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cadence": "hourly", "send_time": dt.time(8)}, "cadence 'hourly'"),
        ({"cadence": "weekly", "send_time": dt.time(8)}, "weekday"),
        ({"cadence": "weekly", "send_time": dt.time(8), "weekday": 7}, "weekday"),
        ({"cadence": "daily", "send_time": dt.time(8), "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"cadence": "daily", "send_time": dt.time(8), "timezone": "../etc/passwd"}, "passwd"),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(")):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_at(Schedule("daily", dt.time(8)), dt.datetime(2026, 1, 1, 9, 0))


def test_manual_clock_moves_only_forward_and_records_sleeps() -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=UTC))
    clock.sleep(1.5)
    clock.advance(hours=1)
    assert clock.now() == dt.datetime(2026, 1, 1, 1, 0, 1, 500000, tzinfo=UTC)
    assert clock.slept == [1.5]
    with pytest.raises(ValueError):
        clock.set(dt.datetime(2025, 1, 1, tzinfo=UTC))
