"""The deliveries table's queries for a batch: claim many new periods at once, give back what was never sent.

Same rules as service.delivery.records (unique (subscription, period); a paper never in two digests of
one subscription), each as one statement for the whole chunk; service.delivery.batch runs them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.delivery.records import Claimed, insert_for
from service.digest.compose import item_record
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Paper


@dataclass(frozen=True)
class NewClaim:
    """A period never attempted, with the digest composed for it."""

    subscription_id: int
    period: str
    digest: Digest
    empty: bool  # nothing to send: recorded as 'empty', done at once

    @property
    def key(self) -> tuple[int, str]:
        return self.subscription_id, self.period


def claim_new_many(
    session: Session, claims: Sequence[NewClaim], *, now: dt.datetime, instance: str
) -> tuple[dict[tuple[int, str], Claimed], set[tuple[int, str]]]:
    """claim_new for many periods in one multi-row INSERT, their papers in another (or a few: a
    statement holds up to 1000 rows).

    Returns (what was claimed, by (subscription, period); the periods not claimed because another
    delivery of the subscription recorded one of their papers first). A period that already has a
    row is in neither. A taken paper undoes only its own delivery: the others stay claimed.
    """
    if not claims:
        return {}, set()
    insert = insert_for(session)
    # Executed with a list of parameter sets: SQLAlchemy sends them as multi-row INSERTs
    # ("insertmanyvalues") from one cached compiled statement; .values([...]) would compile anew each time.
    conn = session.connection()
    rows = conn.execute(
        insert(Delivery)
        .on_conflict_do_nothing(index_elements=["subscription_id", "period"])
        .returning(Delivery.id, Delivery.subscription_id, Delivery.period),
        [
            {
                "subscription_id": c.subscription_id,
                "period": c.period,
                "status": "empty" if c.empty else "claimed",
                "attempts": 0 if c.empty else 1,
                "claimed_by": instance,
                "claimed_at": now,
                "created_at": now,  # the digest window of the next period starts here
                "updated_at": now,
            }
            for c in claims
        ],
    ).all()
    ids = {(row.subscription_id, row.period): row.id for row in rows}
    mine = [c for c in claims if c.key in ids]
    paper_ids = {item.paper_id for c in mine for item in c.digest.items}
    seen = dict(session.execute(select(Paper.id, Paper.first_seen_at).where(Paper.id.in_(paper_ids))).all())
    papers = [
        {
            "delivery_id": ids[c.key],
            "subscription_id": c.subscription_id,
            "paper_id": item.paper_id,
            "rank": rank,
            "score": item.score,
            "reason": item_record(item),
            "paper_seen_at": seen.get(item.paper_id),  # the window bound the pass reads by
        }
        for c in mine
        for rank, item in enumerate(c.digest.items, start=1)
    ]
    held: Counter[int] = Counter()
    if papers:
        # DO NOTHING rather than an error: a paper another digest holds must not undo the whole batch.
        held.update(
            conn.execute(
                insert(DeliveryPaper).on_conflict_do_nothing().returning(DeliveryPaper.delivery_id), papers
            ).scalars()
        )
    taken = {c.key for c in mine if held[ids[c.key]] != len(c.digest.items)}
    if taken:
        undone = [ids[key] for key in taken]
        session.execute(delete(DeliveryPaper).where(DeliveryPaper.delivery_id.in_(undone)))
        session.execute(delete(Delivery).where(Delivery.id.in_(undone)))
    claimed = {
        c.key: Claimed(ids[c.key], 0 if c.empty else 1, c.digest, "empty" if c.empty else "claimed")
        for c in mine
        if c.key not in taken
    }
    return claimed, taken


def release_unsent(session: Session, new: Sequence[int], retried: Sequence[int]) -> None:
    """Give back claims never handed to a channel (a batch stopped by an error): new periods are
    claimed afresh by a later pass, retries are due again as they were."""
    if new:
        session.execute(delete(DeliveryPaper).where(DeliveryPaper.delivery_id.in_(new)))
        session.execute(delete(Delivery).where(Delivery.id.in_(new), Delivery.status == "claimed"))
    if retried:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(retried), Delivery.status == "claimed")
            .values(status="retry", attempts=Delivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )
