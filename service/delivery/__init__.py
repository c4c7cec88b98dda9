"""The delivery path, in the order a pass runs it.

scheduler (the clock, one leader by the lease) -> dispatch (one pass over due subscriptions and retries)
-> batch (claim, send, mark many digests, writes batched; tasks runs the same on Celery workers) or
attempt (one digest: `paperboy digest send`) -> records, batch_records (the SQL of claims and marks);
schedule computes when each subscription is due.

`deliver`, `ChannelPool` and friends are re-exported lazily: service.delivery.schedule is imported by
the web and subscription modules, which must not pull in every channel just to compute a send time.
"""

from __future__ import annotations

import importlib
from typing import Any

_ATTEMPT_NAMES = {
    "CHANNELS",
    "ChannelPool",
    "DeliveryOutcome",
    "channel_for",
    "deliver",
    "describe",
    "not_deliverable",
    "retries_due",
}


def __getattr__(name: str) -> Any:
    if name in _ATTEMPT_NAMES:
        return getattr(importlib.import_module("service.delivery.attempt"), name)
    raise AttributeError(f"module 'service.delivery' has no attribute {name!r}")
