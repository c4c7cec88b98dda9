"""Papers in, stored once: batched lookups and bulk upserts, inside the caller's transaction.

A record is the same paper as a stored one when their arXiv ids (without version) agree, or -- when
either side has no arXiv id -- when their normalised titles agree. So a paper first met in a listing
(title only) and later in the arXiv feed (with its id) stays one paper and gains the id.

Each record is counted once: `new` (created), `updated` (it existed, earlier or earlier in this very
file, and this record changed its metadata) or `duplicate` (it existed and nothing changed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.ingest.normalize import paper_key, title_key
from service.ingest.records import PaperRecord
from service.models import Paper, utcnow

BATCH_SIZE = 1000
_PAPERS = Paper.__table__
_MERGED_ON_CONFLICT = ("upvotes", "published_on", "organization", "author_count", "code_url")

# PostgreSQL: new rows go through COPY into a staging table (see _copy_upsert_postgresql).
_PG_TYPES = {
    "key": "text",
    "title_key": "text",
    "arxiv_id": "text",
    "title": "text",
    "abstract": "text",
    "authors": "json",
    "author_count": "int",
    "organization": "text",
    "published_on": "date",
    "upvotes": "int",
    "url": "text",
    "code_url": "text",
    "links": "json",
    "source": "text",
    "first_seen_at": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
_PG_COLUMNS = tuple(_PG_TYPES)
_PG_JSON = {c for c, t in _PG_TYPES.items() if t == "json"}
# Lives for the transaction only; ON COMMIT DROP keeps nothing behind.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS paper_staging ("
    + ", ".join(f"{c} {t}" for c, t in _PG_TYPES.items())
    + ") ON COMMIT DROP"
)
_PG_UPSERT_FROM_STAGING = (
    f"INSERT INTO papers ({', '.join(_PG_COLUMNS)}) SELECT {', '.join(_PG_COLUMNS)} FROM paper_staging "
    "ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, papers.{c})" for c in _MERGED_ON_CONFLICT)
    + ", updated_at = EXCLUDED.updated_at"
)

# Metadata a later dump may replace when it brings a (different) value.
_REPLACEABLE = ("authors", "author_count", "organization", "published_on", "upvotes", "url", "code_url")
_LOOKUP_COLUMNS = (
    Paper.id,
    Paper.arxiv_id,
    Paper.title_key,
    Paper.abstract,
    Paper.links,
    *(getattr(Paper, name) for name in _REPLACEABLE),
)


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    duplicate: int = 0

    @property
    def total(self) -> int:
        return self.new + self.updated + self.duplicate


def _changes(row: dict[str, Any], record: PaperRecord) -> dict[str, Any]:
    """The column values `record` brings that `row` does not already have."""
    changes: dict[str, Any] = {}
    if record.arxiv_id and not row["arxiv_id"]:
        changes["arxiv_id"] = record.arxiv_id
    if record.abstract and not row["abstract"]:
        changes["abstract"] = record.abstract
    for name in _REPLACEABLE:
        value = getattr(record, name)
        if value is not None and value != [] and value != row[name]:
            changes[name] = value
    if record.links:
        merged = list(row["links"] or [])
        merged += [link for link in record.links if link not in merged]
        if len(merged) != len(row["links"] or []):
            changes["links"] = merged
    return changes


class PaperStore:
    """Collects records and writes them in batches through `session` (which the caller commits)."""

    def __init__(self, session: Session, source: str, seen_at: dt.datetime, batch_size: int = BATCH_SIZE):
        self.session = session
        self.source = source[:300]
        self.seen_at = seen_at
        self.batch_size = batch_size
        self.counts = StoreCounts()
        self._batch: list[PaperRecord] = []
        self._staging_ready = False
        self._analyze_at = 5000  # PostgreSQL: refresh statistics after this many new papers, then x10

    def add(self, record: PaperRecord) -> None:
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def add_all(self, records: Iterable[PaperRecord]) -> StoreCounts:
        for record in records:
            self.add(record)
        self.flush()
        return self.counts

    def flush(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self._write(batch)

    def _existing(self, batch: list[PaperRecord], title_keys: set[str]) -> list[dict[str, Any]]:
        """Stored papers sharing an arXiv id or a title key with the batch, oldest first.

        Two indexed lookups rather than one `title_key IN (...) OR arxiv_id IN (...)`, which
        PostgreSQL may answer with a sequential scan of the whole table.
        """
        found: dict[int, dict[str, Any]] = {}
        arxiv_ids = {r.arxiv_id for r in batch if r.arxiv_id}
        conditions = [Paper.title_key.in_(title_keys)]
        if arxiv_ids:
            conditions.append(Paper.arxiv_id.in_(arxiv_ids))
        for condition in conditions:
            for row in self.session.execute(select(*_LOOKUP_COLUMNS).where(condition)):
                found.setdefault(row.id, dict(row._mapping))
        return [found[key] for key in sorted(found)]

    def _write(self, batch: list[PaperRecord]) -> None:
        by_arxiv: dict[str, dict[str, Any]] = {}
        by_title: dict[str, dict[str, Any]] = {}  # the oldest paper with that title key

        def index(row: dict[str, Any]) -> None:
            if row["arxiv_id"]:
                by_arxiv.setdefault(row["arxiv_id"], row)
            by_title.setdefault(row["title_key"], row)

        keys = [title_key(record.title) for record in batch]
        for row in self._existing(batch, set(keys)):
            index(row)
        created: list[dict[str, Any]] = []
        dirty: dict[int, dict[str, Any]] = {}  # id -> row, for papers that existed before this batch
        for record, tkey in zip(batch, keys, strict=True):
            row = by_arxiv.get(record.arxiv_id) if record.arxiv_id else None
            if row is None:
                candidate = by_title.get(tkey)
                # Same title but a different arXiv id: two papers that share a title.
                if candidate is not None and not (
                    record.arxiv_id and candidate["arxiv_id"] and candidate["arxiv_id"] != record.arxiv_id
                ):
                    row = candidate
            if row is None:
                row = self._new_row(record, tkey)
                created.append(row)
                index(row)
                self.counts.new += 1
                continue
            changes = _changes(row, record)
            if not changes:
                self.counts.duplicate += 1
                continue
            self.counts.updated += 1
            row.update(changes)
            if "arxiv_id" in changes:
                index(row)
            if row.get("id") is not None:
                dirty[row["id"]] = row
        if created:
            self._insert(created)
        if dirty:
            self._update(list(dirty.values()))

    def _new_row(self, record: PaperRecord, tkey: str) -> dict[str, Any]:
        return {
            "id": None,
            "key": paper_key(record),
            "title_key": tkey,
            "arxiv_id": record.arxiv_id,
            "title": record.title,
            "abstract": record.abstract,
            "authors": record.authors,
            "author_count": record.author_count,
            "organization": record.organization[:300] if record.organization else None,
            "published_on": record.published_on,
            "upvotes": record.upvotes,
            "url": record.url[:500] if record.url else None,
            "code_url": record.code_url[:500] if record.code_url else None,
            "links": record.links,
            "source": self.source,
            "first_seen_at": self.seen_at,
            "created_at": self.seen_at,
            "updated_at": self.seen_at,
        }

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        """INSERT ... ON CONFLICT (key) DO UPDATE for all rows at once.

        Within a batch every new row has its own key; a conflict can only come from a concurrent
        ingest of the same paper, which then merges (a missing value never erases a stored one).
        """
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            self._copy_upsert_postgresql(connection, rows)
            if self.counts.new >= self._analyze_at:
                # A big file grows the table inside one transaction, past what the planner's statistics
                # know; refreshed statistics keep the lookups on their indexes instead of seq scans.
                connection.exec_driver_sql("ANALYZE papers")
                self._analyze_at *= 10
            return
        # SQLite: with RETURNING, SQLAlchemy's "insertmanyvalues" sends multi-row VALUES pages from one
        # cached statement.
        stmt = sqlite_insert(_PAPERS)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[_PAPERS.c.key],
            set_={name: func.coalesce(excluded[name], _PAPERS.c[name]) for name in _MERGED_ON_CONFLICT}
            | {"updated_at": excluded.updated_at},
        ).returning(_PAPERS.c.id)
        connection.execute(stmt, [{k: v for k, v in row.items() if k != "id"} for row in rows]).all()

    def _copy_upsert_postgresql(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """COPY the rows into a session-local staging table, then one INSERT ... SELECT ... ON CONFLICT.

        COPY is PostgreSQL's bulk path: rows are streamed in one go, formatted by psycopg's C code,
        with no per-row statement and no giant parameter list.
        """
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if not self._staging_ready:
                cursor.execute(_PG_STAGING)
                self._staging_ready = True
            with cursor.copy(f"COPY paper_staging ({', '.join(_PG_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [json.dumps(row[name]) if name in _PG_JSON else row[name] for name in _PG_COLUMNS]
                    )
            cursor.execute(_PG_UPSERT_FROM_STAGING)
            cursor.execute("TRUNCATE paper_staging")
        finally:
            cursor.close()

    def _update(self, rows: list[dict[str, Any]]) -> None:
        """UPDATE by primary key, executemany (psycopg pipelines it)."""
        columns = ("arxiv_id", "abstract", "links", *_REPLACEABLE)
        now = utcnow()
        params = [{"row_id": row["id"], **{c: row[c] for c in columns}, "updated_at": now} for row in rows]
        stmt = (
            update(_PAPERS)
            .where(_PAPERS.c.id == bindparam("row_id"))
            .values({c: bindparam(c) for c in (*columns, "updated_at")})
        )
        self.session.connection().execute(stmt, params)
