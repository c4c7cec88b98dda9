"""Rate limits that belong to the outside world, held across every worker (REDIS_URL set).

An SMTP relay's rate (SMTP_RATE_PER_S) and Slack's per-channel limit (SLACK_RATE_PER_CHANNEL_S) are
the relay's and the channel's, not one process's: with several workers each pacing itself, N
workers send N times too fast. With REDIS_URL the limit is counted in Redis (the `limits` library's
moving window), shared by every process; without it, each process paces itself as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from service.channels.slack_pacing import ChannelPacer
from service.config import Settings

POLL_S = 0.01  # how often a refused caller asks again


def per_second(rate: float) -> RateLimitItem:
    """`rate` events a second as a limits item (whole numbers: 0.5/s is one every 2 s)."""
    if rate >= 1:
        return RateLimitItemPerSecond(round(rate), 1, namespace="paperboy")
    return RateLimitItemPerSecond(1, max(1, round(1 / rate)), namespace="paperboy")


class SharedLimit:
    """At most `rate` events a second per key, over every process using the same Redis."""

    def __init__(self, redis_url: str, rate: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(redis_url))
        self.item = per_second(rate)
        self._sleep = sleep

    def try_acquire(self, key: str) -> bool:
        return bool(self.limiter.hit(self.item, key))

    def wait(self, key: str) -> None:
        while not self.try_acquire(key):
            self._sleep(POLL_S)


class SharedRelayLimit:
    """EmailChannel's limiter (`wait()`) counted per relay across workers."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.shared = SharedLimit(settings.redis_url, settings.smtp_rate_per_s, sleep=sleep)
        self.key = relay_key(settings)

    def wait(self) -> None:
        self.shared.wait(self.key)


def relay_key(settings: Settings) -> str:
    """The relay's host and port, never its credentials."""
    if settings.smtp_url is None:
        return "smtp:outbox"
    url = urlsplit(settings.smtp_url.get_secret_value())
    return f"smtp:{url.hostname}:{url.port or ''}"


class SharedChannelPacer(ChannelPacer):
    """slack_pacing.ChannelPacer whose one-message-per-interval also holds across workers."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings.slack_rate_per_channel_s, sleep=sleep)
        interval = settings.slack_rate_per_channel_s
        self.shared = SharedLimit(settings.redis_url, 1 / interval, sleep=sleep) if interval > 0 else None

    def wait(self, key: str) -> None:
        super().wait(key)  # this process's own spacing and any Retry-After hold
        if self.shared is not None:
            self.shared.wait(f"slack:{key}")
