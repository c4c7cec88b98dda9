"""Prometheus metrics of the delivery path (prometheus-client).

Two kinds, because the work is spread over processes:

* what the database knows, read at each scrape by `paperboy metrics` (one endpoint for the whole
  deployment, whatever the number of workers): digests by channel and status over the last 24 hours,
  retries waiting, deliveries stuck between send and mark, subscriptions due and the queue lag (how
  long the longest-waiting due digest has waited), bounces in the last 24 hours;
* what a process measures as it works (pass duration, ranking time per batch, outcomes): counted in
  the process that does the work, and served with the database gauges by `paperboy metrics` when
  that process is the one serving them (`paperboy run --metrics-port`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from service.models import Delivery, MailEvent, Subscription

PASS_SECONDS = Histogram(
    "paperboy_pass_seconds",
    "Duration of one dispatch pass (in process) or one enqueue pass (broker).",
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 7200),
)
RANK_SECONDS = Histogram(
    "paperboy_pool_rank_seconds",
    "Time spent composing one batch of digests against its pool.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300),
)
OUTCOMES = Counter("paperboy_digest_outcomes", "Delivery attempts by outcome, in this process.", ["status"])


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, engine: Engine, now: Callable[[], dt.datetime] | None = None) -> None:
        self.engine = engine
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from service.delivery.recovery import owner_dead

        now = self.now()
        since = now - dt.timedelta(hours=24)
        digests = GaugeMetricFamily(
            "paperboy_digests_24h",
            "Deliveries updated in the last 24 hours, by channel and status.",
            labels=["channel", "status"],
        )
        active = (Subscription.status == "active", Subscription.paused.is_(False))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Subscription.channel, Delivery.status, func.count())
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.updated_at >= since)
                .group_by(Subscription.channel, Delivery.status)
            ).all()
            retrying = conn.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "retry")
            )
            stuck = conn.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == "claimed", owner_dead(now))
            )
            due, oldest = conn.execute(
                select(func.count(), func.min(Subscription.next_digest_at)).where(
                    *active, Subscription.next_digest_at <= now
                )
            ).one()
            bounces = conn.scalar(
                select(func.count())
                .select_from(MailEvent)
                .where(MailEvent.kind.in_(("hard_bounce", "soft_bounce")), MailEvent.occurred_at >= since)
            )
        for channel, status, count in rows:
            digests.add_metric([channel, status], count)
        yield digests
        yield GaugeMetricFamily("paperboy_retrying", "Deliveries waiting for a retry.", value=retrying or 0)
        yield GaugeMetricFamily(
            "paperboy_stuck_deliveries",
            "Deliveries a dead instance left between send and mark.",
            value=stuck or 0,
        )
        yield GaugeMetricFamily(
            "paperboy_due_subscriptions", "Subscriptions whose digest is due now.", value=due
        )
        lag = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "paperboy_queue_lag_seconds", "How long the longest-waiting due digest has waited.", value=lag
        )
        yield GaugeMetricFamily(
            "paperboy_bounces_24h", "Bounces recorded in the last 24 hours.", value=bounces or 0
        )


def registry_for(
    engine: Engine, *, include_process: bool = True, now: Callable[[], dt.datetime] | None = None
) -> CollectorRegistry:
    """A registry with the database gauges (and this process's own metrics)."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine, now))
    if include_process:
        for collector in (PASS_SECONDS, RANK_SECONDS, OUTCOMES):
            registry.register(collector)
    return registry


__all__ = ["OUTCOMES", "PASS_SECONDS", "RANK_SECONDS", "REGISTRY", "DatabaseCollector", "registry_for"]
