"""Slack's per-channel rate limit kept on paperboy's side: about one message a second to a channel.

One pacer per process (`shared_pacer`) is shared by every SlackChannel and thread, so concurrent
batches still space their messages to one channel; channels are independent of each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ChannelPacer:
    """At most one message per `interval` seconds to each channel, shared by threads."""

    def __init__(
        self,
        interval: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = max(interval, 0.0)
        self._sleep = sleep
        self._monotonic = monotonic
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> None:
        """Block until `key` may receive a message, and book its slot."""
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next.get(key, 0.0))
            if self.interval or key in self._next:
                self._next[key] = start + self.interval
            if len(self._next) > 10_000:  # forget channels whose slot has long passed
                self._next = {k: t for k, t in self._next.items() if t > now}
        if start > now:
            self._sleep(start - now)

    def done(self, key: str) -> None:
        """`key`'s message was just answered: the next leaves one interval after this, not after the
        send began, so a send slow to reach Slack cannot bring two messages closer than the limit."""
        if self.interval:
            with self._lock:
                self._next[key] = max(self._next.get(key, 0.0), self._monotonic() + self.interval)

    def hold(self, key: str, seconds: float) -> None:
        """Slack said wait (Retry-After): no message to `key` before `seconds` from now."""
        with self._lock:
            until = self._monotonic() + seconds
            self._next[key] = max(self._next.get(key, 0.0), until)


_PACERS: dict[float, ChannelPacer] = {}
_PACERS_LOCK = threading.Lock()


def shared_pacer(interval: float) -> ChannelPacer:
    """The process-wide pacer: every SlackChannel of the process respects the same per-channel slots."""
    with _PACERS_LOCK:
        if interval not in _PACERS:
            _PACERS[interval] = ChannelPacer(interval)
        return _PACERS[interval]
