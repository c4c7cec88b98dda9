"""Time, injected: the service asks a Clock for "now" so tests can walk through days and DST changes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Where paperboy gets the current instant (aware, UTC) and how it waits."""

    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; `sleep` advances it instead of waiting.

    Thread-safe, so a test can share one between two dispatchers.
    """

    def __init__(self, start: dt.datetime) -> None:
        self._now = _aware_utc(start)
        self._lock = threading.Lock()
        self.slept: list[float] = []  # every sleep asked for, so tests can check backoff

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += dt.timedelta(seconds=max(seconds, 0.0))

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        """Move forward by `delta` or timedelta(**kwargs); returns the new now."""
        step = delta if delta is not None else dt.timedelta(**kwargs)
        if step < dt.timedelta(0):
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, instant: dt.datetime) -> None:
        """Jump to `instant` (forward only: the service never sees time run backwards)."""
        instant = _aware_utc(instant)
        with self._lock:
            if instant < self._now:
                raise ValueError(f"cannot move a ManualClock back from {self._now} to {instant}")
            self._now = instant


def _aware_utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: give clocks aware datetimes")
    return instant.astimezone(dt.UTC)
