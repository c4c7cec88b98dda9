"""The generic webhook channel: a digest posted to a Discord, Microsoft Teams or Mattermost incoming
webhook (payload shapes and limits in service.channels.webhook_payloads).

A subscription's `address` is "<platform>:<name>" and its `secret` the sealed webhook URL, which never
reaches a log line or an error message. Errors are classified as for Slack (DESIGN convention 2): a 429
is waited out for its Retry-After (Discord also says `retry_after` in the body), up to
SLACK_MAX_WAIT_S, and tried again; 5xx answers and connection errors are tried again twice, then left
to the delivery core's retries; any other 4xx (the webhook was deleted: 404; refused: 400/401/403) is
permanent and the delivery core marks the subscription as needing attention.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.channels.base import DeliveryError
from service.channels.webhook_payloads import BUILDERS, PLATFORMS
from service.config import Settings
from service.digest.model import Digest
from service.models import Profile, Subscription
from service.secrets import SecretError, seal, unseal

TRANSIENT_TRIES = 3
RATE_LIMIT_TRIES = 5


def platform_of(subscription: Subscription) -> str:
    platform = subscription.address.partition(":")[0]
    if platform not in PLATFORMS:
        raise DeliveryError(
            f"webhook subscription {subscription.id}: unknown platform {platform!r}", permanent=True
        )
    return platform


def _retry_after(response: httpx.Response) -> float:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        value = 0.0
    if not value:
        try:
            body = response.json()
            value = float(body.get("retry_after", 0)) if isinstance(body, dict) else 0.0
        except ValueError:
            value = 0.0
    return max(value, 0.5)


class WebhookChannel:
    """Posts each payload of a digest in order; one HTTP client for a batch."""

    name = "webhook"

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.client = httpx.Client(timeout=settings.http_timeout_s, follow_redirects=False)

    def send(self, subscription: Subscription, digest: Digest) -> str:
        platform = platform_of(subscription)
        if not subscription.secret:
            raise DeliveryError(f"webhook subscription {subscription.id} has no URL", permanent=True)
        try:
            url = unseal(subscription.secret, self.settings).reveal()
        except SecretError as exc:
            raise DeliveryError(f"webhook subscription {subscription.id}: {exc}", permanent=True) from exc
        payloads = BUILDERS[platform](digest)
        for n, payload in enumerate(payloads, start=1):
            self._post(url, payload, f"{platform} message {n} of {len(payloads)}")
        return f"{platform}:{len(payloads)} message{'s' if len(payloads) != 1 else ''}"

    def _post(self, url: str, payload: dict[str, Any], what: str) -> None:
        waited = 0.0
        transient = 0
        limited = 0
        while True:
            try:
                response = self.client.post(url, json=payload)
            except httpx.HTTPError as exc:
                transient += 1
                if transient >= TRANSIENT_TRIES:
                    # The exception's text can hold the URL: only its kind is kept.
                    raise DeliveryError(f"{what}: {type(exc).__name__}", permanent=False) from None
                self.sleep(2.0**transient)
                continue
            status = response.status_code
            if 200 <= status < 300:
                return
            if status == 429:
                limited += 1
                delay = _retry_after(response)
                if limited >= RATE_LIMIT_TRIES or waited + delay > self.settings.slack_max_wait_s:
                    raise DeliveryError(f"{what}: rate limited (429)", permanent=False, retry_after=delay)
                waited += delay
                self.sleep(delay)
                continue
            if status >= 500:
                transient += 1
                if transient >= TRANSIENT_TRIES:
                    raise DeliveryError(f"{what}: server error {status}", permanent=False)
                self.sleep(2.0**transient)
                continue
            hint = "the webhook was deleted" if status in (404, 410) else "the webhook refused the message"
            raise DeliveryError(f"{what}: HTTP {status}: {hint}", permanent=True)

    def close(self) -> None:
        self.client.close()


# --- subscribing ---------------------------------------------------------------------------------


def subscribe_webhook(
    session: Session,
    platform: str,
    name: str,
    url: str,
    interests: list[str],
    settings: Settings,
    *,
    query: str | None = None,
    cadence: str = "daily",
    weekday: str | int | None = None,
    send_time: str = "08:00",
    timezone: str = "UTC",
    max_papers: int = 10,
) -> Subscription:
    """A webhook subscription: its own profile ("webhook:<platform>:<name>"), the URL sealed."""
    from service.delivery.schedule import Schedule, ScheduleError
    from service.subscription import SubscriptionError, add_interests, parse_send_time, parse_weekday

    if platform not in PLATFORMS:
        raise SubscriptionError(f"platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
    label = " ".join(name.split())
    if not label or len(label) > 100 or ":" in label:
        raise SubscriptionError("name: 1-100 characters, without ':'")
    if not url.startswith(("https://", "http://127.0.0.1:", "http://localhost:")):
        raise SubscriptionError("url: a webhook URL must start with https:// (http only on loopback)")
    if not 1 <= max_papers <= 100:
        raise SubscriptionError(f"max papers: {max_papers} is not between 1 and 100")
    day = parse_weekday(weekday)
    at = parse_send_time(send_time)
    try:
        Schedule(cadence, at, timezone, day if cadence == "weekly" else None)
    except ScheduleError as exc:
        raise SubscriptionError(f"schedule: {exc}") from exc
    address = f"{platform}:{label}"
    profile_name = f"webhook:{address}"
    profile = session.scalar(select(Profile).where(Profile.name == profile_name))
    if profile is None:
        profile = Profile(name=profile_name[:200])
        session.add(profile)
        session.flush()
    names = add_interests(session, profile, interests, query)
    subscription = Subscription(
        subscriber_id=None,
        profile_id=profile.id,
        channel="webhook",
        address=address,
        secret=seal(url, settings),
        interests=names,
        cadence=cadence,
        weekday=day if cadence == "weekly" else None,
        send_time=at,
        timezone=timezone,
        max_papers=max_papers,
        status="active",
    )
    session.add(subscription)
    session.flush()
    return subscription
