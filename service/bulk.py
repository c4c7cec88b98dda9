"""Bulk subscriptions: import and export CSV or JSON Lines, for whoever runs the service.

One row per email subscription: email, interests, query, cadence, weekday, time, timezone, max_papers
(CSV: interests separated by ";"; JSON Lines: a list). Import is idempotent: an address that already
has an email subscription gets it updated to the row (or is reported unchanged), never a second one.
An address that unsubscribed is never subscribed again by an import. Every bad row is reported with
its line number and field, and the other rows still go in. Rows are handled a chunk at a time with
a few queries per chunk (not per row), so 100k rows import in seconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import JSON, Column, Connection, Table, insert, select, update
from sqlalchemy.orm import Session, selectinload

from service.delivery.schedule import Schedule, ScheduleError
from service.models import Interest, Profile, Subscriber, Subscription, utcnow
from service.subscription import (
    SubscriptionError,
    interest_texts,
    interests_asked,
    normalise_email,
    parse_send_time,
    parse_weekday,
)

FIELDS = ("email", "interests", "query", "cadence", "weekday", "time", "timezone", "max_papers")
FORMATS = ("csv", "jsonl")
CHUNK = 1_000
MAX_ERRORS_KEPT = 1_000
# Before a query filtered the interests it came with, it was an interest of its own named "query";
# such stored subscriptions still export their query in the query column.
_QUERY_INTEREST = "query"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BulkFormatError(ValueError):
    """A file that cannot be read as the format at all (not one bad row)."""


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class SubscriptionRow:
    line: int
    email: str
    interests: tuple[str, ...]
    query: str | None
    cadence: str
    weekday: int | None
    send_time: dt.time
    timezone: str
    max_papers: int


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    to_confirm: list[int] = field(default_factory=list)  # new pending subscribers (confirmation email)

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": self.error_count,
            "dry_run": self.dry_run,
        }


# --- reading -------------------------------------------------------------------------------------


def detect_format(name: str, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise BulkFormatError(f"format {given!r} is not one of {', '.join(FORMATS)}")
        return given
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    raise BulkFormatError(f"{name}: cannot tell the format from the name; give --format csv or jsonl")


def read_records(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, raw record) for each row; a row that is not even a record comes as RowError."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        header = [h.strip() for h in reader.fieldnames or []]
        if "email" not in header:
            raise BulkFormatError(
                f"the CSV header {header} has no 'email' column (columns: {', '.join(FIELDS)})"
            )
        unknown = [h for h in header if h and h not in FIELDS]
        if unknown:
            raise BulkFormatError(
                f"the CSV header has unknown columns {unknown} (known: {', '.join(FIELDS)})"
            )
        reader.fieldnames = header
        for record in reader:
            line = reader.line_num
            if None in record:
                yield (
                    line,
                    RowError(
                        line, "row", f"{len(record[None]) + len(header)} cells for {len(header)} columns"
                    ),
                )
                continue
            yield line, record
        return
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            yield line, RowError(line, "row", f"not JSON: {exc}")
            continue
        if not isinstance(record, dict):
            yield line, RowError(line, "row", "a row must be a JSON object")
            continue
        unknown = [k for k in record if k not in FIELDS]
        if unknown:
            yield line, RowError(line, "row", f"unknown fields {unknown} (known: {', '.join(FIELDS)})")
            continue
        yield line, record


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else " ".join(str(value).split())


class _RowProblem(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


_SCHEDULES: dict[tuple[str, dt.time, str, int | None], str | None] = {}


def _check_schedule(cadence: str, send_time: dt.time, timezone: str, weekday: int | None) -> None:
    key = (cadence, send_time, timezone, weekday)
    if key not in _SCHEDULES:  # a few distinct schedules over 100k rows: validate each once
        try:
            Schedule(cadence, send_time, timezone, weekday)
            _SCHEDULES[key] = None
        except ScheduleError as exc:
            _SCHEDULES[key] = str(exc)
    problem = _SCHEDULES[key]
    if problem:
        raise _RowProblem("timezone" if "zone" in problem else "cadence", problem)


# Plain ASCII addresses (nearly all of them) checked by one regular expression: email-validator
# took most of an import's time. It only accepts what email-validator accepts too (no quoting, no
# IDNA, no special-use domain such as .test); anything else goes through email-validator.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63})"
)
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def plain_email(text: str) -> str | None:
    """The address lower-cased when it is plainly valid, else None (ask email-validator)."""
    address = text.strip().lower()
    match = _PLAIN_EMAIL.fullmatch(address)
    if (
        match is None
        or match.group(1) in _SPECIAL_USE
        or len(address) > 254
        or address.index("@") > 64
        or "--" in address.partition("@")[2]  # punycode labels (xn--) and odd hyphens: the full check
    ):
        return None
    return address


def parse_record(line: int, record: dict[str, Any]) -> SubscriptionRow:
    """One validated row, or _RowProblem naming the field."""
    try:
        text = _text(record, "email")
        email = plain_email(text) or normalise_email(text)
    except SubscriptionError as exc:
        raise _RowProblem("email", str(exc).removeprefix("email: ")) from exc
    raw = record.get("interests")
    if isinstance(raw, list):
        interests = [" ".join(str(i).split()) for i in raw]
    elif raw is None or isinstance(raw, str):
        interests = [" ".join(part.split()) for part in (raw or "").split(";")]
    else:
        raise _RowProblem("interests", "must be text (CSV: separated by ';') or a list")
    interests = [i for i in dict.fromkeys(interests) if i]
    query = _text(record, "query") or None
    if not interests and not query:
        raise _RowProblem("interests", "give at least one interest or a query")
    try:  # the same checks as `paperboy subscribe`: the query filters the row's interests
        interest_texts(interests, query)
    except SubscriptionError as exc:
        text = str(exc)
        raise _RowProblem("query" if text.startswith("query") else "interests", text) from exc
    cadence = _text(record, "cadence").lower() or "daily"
    try:
        weekday = parse_weekday(_text(record, "weekday") or None)
        send_time = parse_send_time(_text(record, "time") or "08:00")
    except SubscriptionError as exc:
        name, _, message = str(exc).partition(": ")
        raise _RowProblem("weekday" if name == "weekday" else "time", message) from exc
    if cadence == "weekly" and weekday is None:
        raise _RowProblem("weekday", "a weekly digest needs a day (mon ... sun)")
    weekday = weekday if cadence == "weekly" else None
    timezone = _text(record, "timezone") or "UTC"
    _check_schedule(cadence, send_time, timezone, weekday)
    max_text = _text(record, "max_papers") or "10"
    try:
        max_papers = int(max_text)
    except ValueError as exc:
        raise _RowProblem("max_papers", f"{max_text!r} is not a whole number") from exc
    if not 1 <= max_papers <= 100:
        raise _RowProblem("max_papers", f"{max_papers} is not between 1 and 100")
    return SubscriptionRow(
        line, email, tuple(interests), query, cadence, weekday, send_time, timezone, max_papers
    )


# --- importing -----------------------------------------------------------------------------------


def _names(row: SubscriptionRow) -> list[str]:
    return [name for name, _, _ in interests_asked(row.interests, row.query)]


_SUB_FIELDS = ("interests", "cadence", "weekday", "send_time", "timezone", "max_papers")


def _sub_values(row: SubscriptionRow) -> dict[str, Any]:
    return {
        "interests": _names(row),
        "cadence": row.cadence,
        "weekday": row.weekday,
        "send_time": row.send_time,
        "timezone": row.timezone,
        "max_papers": row.max_papers,
    }


@dataclass
class _Chunk:
    """What one chunk writes: rows gathered first, then one executemany per table."""

    new_rows: list[SubscriptionRow] = field(default_factory=list)
    verify: list[int] = field(default_factory=list)  # subscriber ids now confirmed
    new_profiles: list[tuple[int, SubscriptionRow]] = field(default_factory=list)  # (subscriber id, row)
    new_interests: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)  # interest id -> new query
    new_subs: list[tuple[int, bool, SubscriptionRow]] = field(default_factory=list)  # (subscriber, verified)
    sub_updates: list[dict[str, Any]] = field(default_factory=list)


def _interest_rows(
    profile_id: int, row: SubscriptionRow, have: dict[str, tuple[int, str | None]]
) -> list[dict[str, Any]]:
    wanted = interests_asked(row.interests, row.query)  # as `paperboy subscribe` makes them
    return [
        {
            "profile_id": profile_id,
            "name": name,
            "keywords": keywords,
            "query": query,
            "exclude": "",
            "seeds": [],
            "authors": [],
        }
        for name, keywords, query in wanted
        if name not in have
    ]


def _load_existing(
    session: Session, emails: list[str]
) -> tuple[
    dict[str, tuple[int, bool]], dict[int, int], dict[int, dict[str, tuple[int, str | None]]], dict[int, Any]
]:
    """Subscribers by email, their first profile, its interests, their oldest email subscription."""
    subscribers = {
        email: (sid, verified)
        for sid, email, verified in session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.verified).where(Subscriber.email.in_(emails))
        )
    }
    ids = [sid for sid, _ in subscribers.values()]
    profiles: dict[int, int] = {}
    interests: dict[int, dict[str, tuple[int, str | None]]] = {}
    subscriptions: dict[int, Any] = {}
    if not ids:
        return subscribers, profiles, interests, subscriptions
    for pid, sid in session.execute(
        select(Profile.id, Profile.subscriber_id)
        .where(Profile.subscriber_id.in_(ids))
        .order_by(Profile.id.desc())
    ):
        profiles[sid] = pid  # ordered newest first: the first profile wins, as profile_for picks it
    for iid, pid, name, query in session.execute(
        select(Interest.id, Interest.profile_id, Interest.name, Interest.query).where(
            Interest.profile_id.in_(list(profiles.values()))
        )
    ):
        interests.setdefault(pid, {})[name] = (iid, query)
    columns = [getattr(Subscription, f) for f in _SUB_FIELDS]
    for sub in session.execute(
        select(Subscription.id, Subscription.subscriber_id, Subscription.status, *columns)
        .where(Subscription.subscriber_id.in_(ids), Subscription.channel == "email")
        .order_by(Subscription.id.desc())
    ):
        subscriptions[sub.subscriber_id] = sub  # the oldest wins (ordered newest first)
    return subscribers, profiles, interests, subscriptions


def _import_chunk(
    session: Session,
    rows: list[SubscriptionRow],
    report: ImportReport,
    *,
    confirmed: bool,
    consent_source: str | None,
    now: dt.datetime,
) -> None:
    subscribers, profiles, interests, subscriptions = _load_existing(session, [r.email for r in rows])
    plan = _Chunk()
    for row in rows:
        known = subscribers.get(row.email)
        if known is None:
            plan.new_rows.append(row)
            report.created += 1
            continue
        sid, verified = known
        sub = subscriptions.get(sid)
        if sub is not None and sub.status == "unsubscribed":
            report.add_error(
                RowError(row.line, "email", f"{row.email} unsubscribed; an import never resubscribes")
            )
            continue
        if confirmed and not verified:
            plan.verify.append(sid)
            verified = True
        pid = profiles.get(sid)
        changed = False
        if pid is None:
            plan.new_profiles.append((sid, row))
        else:
            have = interests.get(pid, {})
            added = _interest_rows(pid, row, have)
            plan.new_interests += added
            changed = bool(added)
            for name, _, query in interests_asked(row.interests, row.query):
                current = have.get(name)
                if current is not None and current[1] != query:  # the row's query filters it now
                    plan.queries.append({"id": current[0], "query": query})
                    changed = True
        if sub is None:
            plan.new_subs.append((sid, verified, row))
            report.created += 1
            continue
        values = _sub_values(row)
        update = {k: v for k, v in values.items() if getattr(sub, k) != v}
        if update:
            update["next_digest_at"] = None  # the dispatcher gives it its next slot under the new schedule
        if sub.status == "pending" and verified:
            update["status"] = "active"
        if update:
            plan.sub_updates.append({"id": sub.id, "updated_at": now, **update})
        report.updated += bool(update) or changed
        report.unchanged += not (update or changed)
    _write_chunk(session, plan, report, confirmed=confirmed, consent_source=consent_source, now=now)


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT the rows; on PostgreSQL by COPY, which is several times faster than any INSERT form.

    COPY knows nothing of SQLAlchemy's Python-side defaults: columns with one are filled here, the
    columns with only a server default are left out so the server fills them; JSON is sent as text."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    given = set().union(*(row.keys() for row in rows))
    columns = [
        c
        for c in table.columns
        if c.name in given or (c.default is not None and (c.default.is_scalar or c.default.is_callable))
    ]
    defaults = {c.name: c.default for c in columns if c.default is not None}

    def value(column: Column[Any], row: dict[str, Any]) -> Any:
        default = defaults.get(column.name)
        if column.name in row or default is None:
            found = row.get(column.name)
        else:
            found = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined, operator]
        return json.dumps(found) if isinstance(column.type, JSON) and found is not None else found

    names = ", ".join(f'"{c.name}"' for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([value(c, row) for c in columns])


def _write_chunk(
    session: Session,
    plan: _Chunk,
    report: ImportReport,
    *,
    confirmed: bool,
    consent_source: str | None,
    now: dt.datetime,
) -> None:
    """A few statements per table and chunk, in Core (the ORM's bulk insert falls back to a statement
    a row for tables with server defaults); interests and subscriptions by COPY on PostgreSQL."""
    conn = session.connection()
    consent = {"consent_source": consent_source, "consent_at": now} if confirmed else {}
    if plan.verify:
        session.execute(update(Subscriber), [{"id": sid, "verified": True, **consent} for sid in plan.verify])
    new_ids: dict[str, int] = {}
    if plan.new_rows:
        returned = conn.execute(
            insert(Subscriber.__table__).returning(
                Subscriber.__table__.c.id, Subscriber.__table__.c.email, sort_by_parameter_order=True
            ),
            [
                {"email": r.email, "verified": confirmed, "timezone": r.timezone, **consent}
                for r in plan.new_rows
            ],
        )
        new_ids = {email: sid for sid, email in returned}
        if not confirmed:
            report.to_confirm.extend(new_ids.values())
    fresh = [(new_ids[r.email], r) for r in plan.new_rows] + plan.new_profiles
    if fresh:
        returned = conn.execute(
            insert(Profile.__table__).returning(Profile.__table__.c.id, sort_by_parameter_order=True),
            [{"name": f"email:{r.email}"[:200], "subscriber_id": sid} for sid, r in fresh],
        )
        for pid, (_, row) in zip(returned.scalars(), fresh, strict=True):
            plan.new_interests += _interest_rows(pid, row, {})
    if plan.new_interests:
        _insert_many(conn, Interest.__table__, plan.new_interests)
    if plan.queries:
        session.execute(update(Interest), plan.queries)
    profile_of = (
        dict(
            session.execute(
                select(Profile.subscriber_id, Profile.id)
                .where(
                    Profile.subscriber_id.in_(
                        [sid for sid, _ in fresh] + [sid for sid, _, _ in plan.new_subs]
                    )
                )
                .order_by(Profile.id.desc())
            ).all()
        )
        if fresh or plan.new_subs
        else {}
    )
    subs = [(sid, confirmed, r) for sid, r in ((new_ids[r.email], r) for r in plan.new_rows)] + plan.new_subs
    if subs:
        _insert_many(
            conn,
            Subscription.__table__,
            [
                {
                    "subscriber_id": sid,
                    "profile_id": profile_of[sid],
                    "channel": "email",
                    "address": row.email,
                    "status": "active" if verified else "pending",
                    **_sub_values(row),
                }
                for sid, verified, row in subs
            ],
        )
    if plan.sub_updates:
        session.execute(update(Subscription), plan.sub_updates)


def import_subscriptions(
    session: Session,
    records: Iterable[tuple[int, dict[str, Any] | RowError]],
    *,
    confirmed: bool = False,
    consent_source: str | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import the rows (flushed, not committed: the caller commits, or rolls back for a dry run).

    `confirmed`: the addresses consented elsewhere (`consent_source` says where, and is required);
    they are active at once. Otherwise new addresses are pending until they follow the confirmation
    email the caller sends to `report.to_confirm`.
    """
    if confirmed and not (consent_source or "").strip():
        raise BulkFormatError("importing as confirmed needs a consent source (where the addresses opted in)")
    source = " ".join((consent_source or "").split())[:300] or None
    now = now or utcnow()
    report = ImportReport(dry_run=dry_run)
    seen: dict[str, int] = {}
    chunk: list[SubscriptionRow] = []
    for line, record in records:
        report.rows += 1
        if isinstance(record, RowError):
            report.add_error(record)
            continue
        try:
            row = parse_record(line, record)
        except _RowProblem as problem:
            report.add_error(RowError(line, problem.field, str(problem)))
            continue
        if row.email in seen:
            report.add_error(RowError(line, "email", f"{row.email} is already on line {seen[row.email]}"))
            continue
        seen[row.email] = line
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _import_chunk(session, chunk, report, confirmed=confirmed, consent_source=source, now=now)
            chunk = []
    if chunk:
        _import_chunk(session, chunk, report, confirmed=confirmed, consent_source=source, now=now)
    return report


# --- exporting -----------------------------------------------------------------------------------


def export_records(session: Session, *, include_unsubscribed: bool = False) -> Iterator[dict[str, Any]]:
    """Every email subscription as an import row (the same format back)."""
    stmt = (
        select(Subscription, Subscriber.email)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscription.channel == "email")
        .order_by(Subscription.id)
        .options(selectinload(Subscription.profile).selectinload(Profile.interests))
        .execution_options(yield_per=CHUNK)
    )
    if not include_unsubscribed:
        stmt = stmt.where(Subscription.status != "unsubscribed")
    for sub, email in session.execute(stmt):
        names = [str(n) for n in sub.interests or ()] or [i.name for i in sub.profile.interests]
        rows = {i.name: i for i in sub.profile.interests if i.name in names}
        # The query that filters the interests; an interest that is only its query is that query.
        query = next((rows[n].query for n in names if n in rows and rows[n].query), None)
        only_query = {n for n, i in rows.items() if not i.keywords and i.query and n == i.query[:200]}
        yield {
            "email": email,
            "interests": [n for n in names if n != _QUERY_INTEREST and n not in only_query],
            "query": query or "",
            "cadence": sub.cadence,
            "weekday": _DAYS[sub.weekday] if sub.weekday is not None else "",
            "time": sub.send_time.strftime("%H:%M"),
            "timezone": sub.timezone,
            "max_papers": sub.max_papers,
        }


def write_records(records: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "interests": ";".join(record["interests"])})
            count += 1
        return count
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def send_confirmations(session: Session, subscriber_ids: list[int], settings: Any) -> tuple[int, list[str]]:
    """The double opt-in email to each new pending subscriber: (sent, errors naming the address)."""
    from service.subscription import send_confirmation_email

    sent, errors = 0, []
    for subscriber_id in subscriber_ids:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.verified:
            continue
        subs = [s for s in subscriber.subscriptions if s.channel == "email" and s.status == "pending"]
        try:
            send_confirmation_email(subscriber, subs, settings=settings)
            sent += 1
        except Exception as exc:  # one refused address does not stop the others
            errors.append(f"{subscriber.email}: {exc}")
    return sent, errors
