"""When a subscription's digests are due: pure functions of its schedule and an instant.

A schedule has *slots*: the local dates it sends on (every day; Monday to Friday; one chosen weekday),
each at the subscriber's local send time in their IANA zone. Every slot has a period key, and the
deliveries table holds at most one delivery per (subscription, period), so the period key is what makes
a digest "the same digest".

Daylight saving: each local date maps to exactly one instant, so a DST change can neither skip nor
double a digest. A send time inside a spring-forward gap (02:30 on a day that jumps from 02:00 to 03:00)
is sent when the wall clock reads 03:30, the gap's length later (PEP 495, fold=0); a send time inside an
autumn fold (01:30 happening twice) is sent at its first occurrence.

Catch-up: after downtime only the latest slot that has passed is due (`latest_slot`); periods missed in
between are coalesced into it rather than sent one by one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from service.models import Subscription

CADENCES = ("daily", "weekdays", "weekly")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SEARCH_DAYS = 9  # every cadence has a slot within any 7 consecutive local dates; 2 days of margin


class ScheduleError(ValueError):
    """A subscription whose schedule cannot be computed (unknown zone, cadence or weekday)."""


@dataclass(frozen=True)
class Schedule:
    """A subscription's timing: cadence, weekday (weekly only, 0=Monday), local send time, IANA zone."""

    cadence: str
    send_time: dt.time
    timezone: str = "UTC"
    weekday: int | None = None

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise ScheduleError(f"cadence {self.cadence!r} is not one of {', '.join(CADENCES)}")
        if self.cadence == "weekly" and (self.weekday is None or not 0 <= self.weekday <= 6):
            raise ScheduleError(f"weekly cadence needs a weekday 0-6 (0=Monday), got {self.weekday!r}")
        if self.send_time.tzinfo is not None:
            raise ScheduleError("send_time is a local wall-clock time; it must not carry a tzinfo")
        self.zone  # noqa: B018 - validate the zone name now, not at the first tick

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown IANA time zone {self.timezone!r}") from exc

    @classmethod
    def of(cls, subscription: Subscription) -> Schedule:
        """The schedule a subscription row describes."""
        return cls(
            cadence=subscription.cadence,
            send_time=subscription.send_time,
            timezone=subscription.timezone,
            weekday=subscription.weekday,
        )

    def describe(self) -> str:
        when = self.send_time.strftime("%H:%M")
        if self.cadence == "weekly":
            return f"weekly on {WEEKDAY_NAMES[self.weekday or 0]} at {when} {self.timezone}"
        return f"{self.cadence} at {when} {self.timezone}"


@dataclass(frozen=True)
class Slot:
    """One scheduled digest: its local date, the instant it is due (UTC) and its period key."""

    local_date: dt.date
    due_at: dt.datetime
    period: str


def sends_on(schedule: Schedule, local_date: dt.date) -> bool:
    """Whether the schedule has a slot on this local date."""
    if schedule.cadence == "daily":
        return True
    if schedule.cadence == "weekdays":
        return local_date.weekday() < 5
    return local_date.weekday() == schedule.weekday


def period_key(schedule: Schedule, local_date: dt.date) -> str:
    """The period a slot on `local_date` delivers: the local date, or the ISO week for weekly digests."""
    if schedule.cadence == "weekly":
        year, week, _ = local_date.isocalendar()
        return f"{year}-W{week:02d}"
    return local_date.isoformat()


def due_instant(schedule: Schedule, local_date: dt.date) -> dt.datetime:
    """The UTC instant of the slot on `local_date` (gap: shifted forward; fold: first occurrence)."""
    local = dt.datetime.combine(local_date, schedule.send_time, tzinfo=schedule.zone)  # fold=0
    return local.astimezone(dt.UTC)


def slot_on(schedule: Schedule, local_date: dt.date) -> Slot:
    return Slot(local_date, due_instant(schedule, local_date), period_key(schedule, local_date))


def _local_date(schedule: Schedule, instant: dt.datetime) -> dt.date:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: schedules work on aware instants")
    return instant.astimezone(schedule.zone).date()


def latest_slot(schedule: Schedule, at: dt.datetime) -> Slot:
    """The most recent slot due at or before `at`: the one period a catch-up delivers."""
    day = _local_date(schedule, at) + dt.timedelta(days=1)  # see next_slot: gaps across midnight
    for back in range(_SEARCH_DAYS):
        date = day - dt.timedelta(days=back)
        if sends_on(schedule, date):
            slot = slot_on(schedule, date)
            if slot.due_at <= at:
                return slot
    raise AssertionError(f"no slot within {_SEARCH_DAYS} days before {at} for {schedule}")  # unreachable


def next_slot(schedule: Schedule, after: dt.datetime) -> Slot:
    """The first slot due strictly after `after`."""
    # From the day before: a slot shifted forward across midnight by a DST gap may still be ahead.
    day = _local_date(schedule, after) - dt.timedelta(days=1)
    for ahead in range(_SEARCH_DAYS):
        date = day + dt.timedelta(days=ahead)
        if sends_on(schedule, date):
            slot = slot_on(schedule, date)
            if slot.due_at > after:
                return slot
    raise AssertionError(f"no slot within {_SEARCH_DAYS} days after {after} for {schedule}")  # unreachable


def period_at(schedule: Schedule, at: dt.datetime) -> str:
    """The period key of the digest due at instant `at` (the latest slot that has passed)."""
    return latest_slot(schedule, at).period


def slot_of_period(schedule: Schedule, period: str, now: dt.datetime) -> Slot:
    """The slot a period key names (as typed by a person), refusing keys the schedule never produces.

    A period after the next digest's is refused too: delivering it now would leave nothing to send
    when that period really comes.
    """
    weekly = schedule.cadence == "weekly"
    form = "YYYY-Www, e.g. 2026-W48" if weekly else "YYYY-MM-DD, e.g. 2026-11-23"
    what = f"period {period!r} is not a {schedule.cadence} period ({form})"
    try:
        if weekly:
            year, week = period.split("-W")
            monday = dt.date.fromisocalendar(int(year), int(week), 1)
            local_date = monday + dt.timedelta(days=schedule.weekday or 0)
        else:
            local_date = dt.date.fromisoformat(period)
    except ValueError:
        raise ScheduleError(what) from None
    if period_key(schedule, local_date) != period:  # a non-canonical spelling, e.g. 20261123
        raise ScheduleError(what)
    if not sends_on(schedule, local_date):
        raise ScheduleError(
            f"period {period!r} is a {local_date:%A}: {schedule.describe()} sends Monday to Friday"
        )
    slot = slot_on(schedule, local_date)
    upcoming = next_slot(schedule, now)
    if slot.due_at > upcoming.due_at:
        raise ScheduleError(
            f"period {period!r} has not come yet: the next digest is for {upcoming.period}; "
            "send that one or an earlier one"
        )
    return slot


def next_send_at(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """When the next digest after `after` is due: the value stored in subscriptions.next_digest_at."""
    return next_slot(schedule, after).due_at


def slots_between(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> list[Slot]:
    """Every slot due in (start, end], in order (status displays and tests)."""
    slots: list[Slot] = []
    cursor = start
    while True:
        slot = next_slot(schedule, cursor)
        if slot.due_at > end:
            return slots
        slots.append(slot)
        cursor = slot.due_at
