"""The deliveries table's queries for a batch: claim many new periods at once, give back what was never sent.

Same rules as service.delivery.records (unique (subscription, period); a paper never in two digests of
one subscription), each as one statement for the whole chunk; service.delivery.batch runs them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from service.delivery.records import Claimed, insert_for_dialect
from service.digest.compose import item_record
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Paper, UTCDateTime


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
    """claim_new for many periods in one INSERT, their papers in another.

    Returns (what was claimed, by (subscription, period); the periods not claimed because another
    delivery of the subscription recorded one of their papers first). A period that already has a
    row is in neither. A taken paper undoes only its own delivery: the others stay claimed.
    """
    if not claims:
        return {}, set()
    conn = session.connection()
    rows = _insert_deliveries(
        conn,
        [
            {
                "subscription_id": c.subscription_id,
                "period": c.period,
                "status": "empty" if c.empty else "claimed",
                "attempts": 0 if c.empty else 1,
            }
            for c in claims
        ],
        now=now,
        instance=instance,
    )
    ids = {(subscription_id, period): delivery_id for delivery_id, subscription_id, period in rows}
    mine = [c for c in claims if c.key in ids]
    papers = [
        {
            "delivery_id": ids[c.key],
            "subscription_id": c.subscription_id,
            "paper_id": item.paper_id,
            "rank": rank,
            "score": item.score,
            "reason": item_record(item),
        }
        for c in mine
        for rank, item in enumerate(c.digest.items, start=1)
    ]
    # A paper another digest of the subscription holds is skipped (DO NOTHING), not an error that
    # would undo the whole chunk: the delivery short of papers is found by counting.
    held = Counter(_insert_papers(session, papers))
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


# PostgreSQL: one short statement whose columns arrive as arrays. psycopg parses the SQL of every
# statement longer than 4 KB or with more than 50 parameters anew (a multi-row VALUES of a chunk's
# papers: 3 ms a digest), and SQLAlchemy compiles it; this text is parsed and compiled once.
_DELIVERIES_PG = text(
    "INSERT INTO deliveries (subscription_id, period, status, attempts, claimed_by, claimed_at,"
    " created_at, updated_at) SELECT s, p, st, a, :instance, :now, :now, :now"
    " FROM unnest(CAST(:subscription AS integer[]), CAST(:period AS text[]), CAST(:status AS text[]),"
    " CAST(:attempts AS integer[])) AS t(s, p, st, a)"
    " ON CONFLICT (subscription_id, period) DO NOTHING RETURNING id, subscription_id, period"
).bindparams(bindparam("now", type_=UTCDateTime()))
_PAPERS_PG = text(
    "INSERT INTO delivery_papers (delivery_id, subscription_id, paper_id, rank, score, reason, paper_seen_at)"
    " SELECT t.*, papers.first_seen_at FROM unnest(CAST(:delivery AS integer[]),"
    " CAST(:subscription AS integer[]), CAST(:paper AS integer[]), CAST(:rank AS integer[]),"
    " CAST(:score AS float8[]),"
    # One JSON array rather than a text[]: psycopg quotes each element of a text[] with a regex.
    " ARRAY(SELECT r FROM json_array_elements(CAST(:reason AS json)) WITH ORDINALITY AS x(r, n) ORDER BY n))"
    # paper_seen_at, the window bound a pass reads by, is the paper's first_seen_at: joined here.
    " AS t(d, s, p, r, sc, re) JOIN papers ON papers.id = t.p"
    " ON CONFLICT DO NOTHING RETURNING delivery_id"
)


def _array_literal(numbers: Iterable[float]) -> str:
    """A PostgreSQL array literal of numbers: psycopg's list dumper checks every element in Python,
    a seventh of a chunk's claim (str() of an int or a float reads back exactly)."""
    return "{" + ",".join(map(str, numbers)) + "}"


def _insert_deliveries(
    conn: Connection, rows: list[dict[str, Any]], *, now: dt.datetime, instance: str
) -> list[tuple[int, int, str]]:
    """INSERT the rows unless (subscription, period) has one: (id, subscription, period) of those inserted."""
    if conn.dialect.name == "postgresql":
        params = {
            "subscription": [r["subscription_id"] for r in rows],
            "period": [r["period"] for r in rows],
            "status": [r["status"] for r in rows],
            "attempts": [r["attempts"] for r in rows],
            "instance": instance,
            "now": now,
        }
        return [tuple(row) for row in conn.execute(_DELIVERIES_PG, params)]  # type: ignore[misc]
    stamps = {"claimed_by": instance, "claimed_at": now, "created_at": now, "updated_at": now}
    # A list of parameter sets: SQLAlchemy sends multi-row INSERTs ("insertmanyvalues") from one
    # cached compiled statement; .values([...]) would compile anew each time.
    stmt = (
        insert_for_dialect(conn.dialect.name)(Delivery)
        .on_conflict_do_nothing(index_elements=["subscription_id", "period"])
        .returning(Delivery.id, Delivery.subscription_id, Delivery.period)
    )
    return [tuple(row) for row in conn.execute(stmt, [{**r, **stamps} for r in rows])]  # type: ignore[misc]


def _insert_papers(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT delivery_papers rows, skipping those that conflict: the delivery id of each row inserted."""
    if not rows:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {
            "delivery": _array_literal(r["delivery_id"] for r in rows),
            "subscription": _array_literal(r["subscription_id"] for r in rows),
            "paper": _array_literal(r["paper_id"] for r in rows),
            "rank": _array_literal(r["rank"] for r in rows),
            "score": _array_literal(r["score"] for r in rows),
            "reason": json.dumps([r["reason"] for r in rows]),
        }
        return list(conn.execute(_PAPERS_PG, params).scalars())
    paper_ids = {r["paper_id"] for r in rows}
    seen = dict(session.execute(select(Paper.id, Paper.first_seen_at).where(Paper.id.in_(paper_ids))).all())
    rows = [{**r, "paper_seen_at": seen.get(r["paper_id"])} for r in rows]  # the window bound a pass reads by
    stmt = insert_for_dialect(conn.dialect.name)(DeliveryPaper).on_conflict_do_nothing()
    return list(conn.execute(stmt.returning(DeliveryPaper.delivery_id), rows).scalars())
