"""Keep delivery_papers bounded: rows whose papers can no longer be candidates move to archived_papers.

A pass offers only papers first seen after its window start, which is never before now - MAX_WINDOW
(service.digest.compose), so the never-twice rule needs the delivery_papers rows of those papers only.
`prune` moves the older rows of sent deliveries, in batches, to archived_papers; the readers of what
was sent (archive and digest pages, feeds, reader models, the admin API) read both tables through
`delivered_items`, so nothing a reader sees changes. Rows of deliveries not yet sent stay: a retry
rebuilds its digest from them, and a failure releases them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Subquery, delete, insert, select, union_all
from sqlalchemy.orm import Session

from service.digest.compose import MAX_WINDOW
from service.models import ArchivedPaper, Delivery, DeliveryPaper

# A day beyond the widest window: a pass that started before the prune, or a clock a little behind,
# still finds every row it can need.
MARGIN = dt.timedelta(days=1)
BATCH = 10_000  # rows moved per transaction: short locks, bounded memory
_COLUMNS = ("delivery_id", "subscription_id", "paper_id", "rank", "score", "reason")


@dataclass(frozen=True)
class PruneResult:
    """How many rows moved, and the first_seen_at at or before which they were."""

    moved: int
    horizon: dt.datetime


def horizon(now: dt.datetime) -> dt.datetime:
    """Papers first seen at or before this instant can no longer be a candidate of any pass."""
    return now - MAX_WINDOW - MARGIN


def prune(session: Session, *, now: dt.datetime, batch: int = BATCH) -> PruneResult:
    """Move the delivery_papers rows of sent deliveries whose papers are past the horizon to
    archived_papers, committing after each batch; returns how many moved."""
    if batch < 1:
        raise ValueError(f"prune batch: must be at least 1, not {batch}")
    edge = horizon(now)
    moved = 0
    while True:
        ids = list(
            session.scalars(
                select(DeliveryPaper.id)
                .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
                .where(DeliveryPaper.paper_seen_at <= edge, Delivery.status == "sent")
                .limit(batch)
            )
        )
        if not ids:
            return PruneResult(moved, edge)
        hot = [getattr(DeliveryPaper, name) for name in _COLUMNS]
        session.execute(
            insert(ArchivedPaper).from_select(list(_COLUMNS), select(*hot).where(DeliveryPaper.id.in_(ids)))
        )
        session.execute(delete(DeliveryPaper).where(DeliveryPaper.id.in_(ids)))
        session.commit()
        moved += len(ids)


def delivered_items() -> Subquery:
    """Every paper a delivery held, in delivery_papers or already archived: delivery_id,
    subscription_id, paper_id, rank, score, reason."""
    return union_all(
        select(*(getattr(DeliveryPaper, name) for name in _COLUMNS)),
        select(*(getattr(ArchivedPaper, name) for name in _COLUMNS)),
    ).subquery("delivered_items")
