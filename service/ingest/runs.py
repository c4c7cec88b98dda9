"""One ingest run: a file read, parsed, stored in one transaction, and recorded as an IngestRun.

A file whose SHA-256 matches a finished run is skipped (a no-op, reported as such). If anything
fails while storing, the transaction rolls back -- no paper from that file is half-written -- and a
`failed` run is recorded in a transaction of its own, so the failure is not lost with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db import session_factory
from service.ingest.detect import BINARY_SNIFF_BYTES, binary_reason, detect_format, sniff
from service.ingest.parsers import parse
from service.ingest.reading import Decoding, decode_pieces, read_pieces
from service.ingest.records import FORMATS, PaperRecord, ParseError, ParseIssue
from service.ingest.store import PaperStore
from service.models import IngestRun, utcnow

MAX_STORED_ISSUES = 500  # per run; the count of rejected lines is always exact

ProgressCallback = Callable[[int], None]  # bytes read so far


@dataclass
class IngestReport:
    """What became of one file, for the CLI table and the caller."""

    path: Path
    status: str = "done"  # done | skipped | failed
    format: str | None = None
    detected: bool = True  # False when the format was given explicitly
    encoding: str = ""
    new: int = 0
    updated: int = 0
    duplicate: int = 0
    rejected: int = 0
    issues: list[ParseIssue] = field(default_factory=list)  # the first MAX_STORED_ISSUES
    run_id: int | None = None
    previous_run_id: int | None = None  # for skipped files: the run that already ingested it
    sha256: str = ""

    @property
    def errors(self) -> list[str]:
        return [str(issue) for issue in self.issues if issue.skipped]

    @property
    def warnings(self) -> list[str]:
        return [str(issue) for issue in self.issues if not issue.skipped]

    @property
    def ok(self) -> bool:
        return self.status != "failed" and self.rejected == 0

    def fail(self, message: str, line: int | None = None) -> None:
        self.status = "failed"
        self.issues.append(ParseIssue(line, message))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _byte_pieces(path: Path, progress: ProgressCallback | None) -> Iterator[bytes]:
    with path.open("rb") as stream:
        done = 0
        reported = 0
        for piece in read_pieces(stream):
            done += len(piece)
            if progress is not None and done - reported >= 1 << 18:
                progress(done)
                reported = done
            yield piece
        if progress is not None:
            progress(done)


def ingest_file(
    engine: Engine,
    path: Path,
    fmt: str | None = None,
    source: str | None = None,
    today: dt.date | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> IngestReport:
    """Ingest one dump file (fmt: one of FORMATS, or None to detect it).

    dry_run: do all the work, then roll back (the counts say what would have happened).
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    report = IngestReport(path=path, format=fmt, detected=fmt is None, sha256=file_sha256(path))
    source = source or path.name
    sessions = session_factory(engine)
    if not force:
        with sessions() as session:
            previous = session.scalar(
                select(IngestRun.id)
                .where(IngestRun.sha256 == report.sha256, IngestRun.status == "done")
                .order_by(IngestRun.id)
                .limit(1)
            )
        if previous is not None:
            report.status, report.previous_run_id = "skipped", previous
            return report
    started = utcnow()
    try:
        with sessions() as session, session.begin() as transaction:
            _ingest_in(session, report, source, started, today or started.date(), progress)
            if dry_run:
                report.run_id = None
                transaction.rollback()
    except Exception as exc:
        report.new = report.updated = report.duplicate = 0
        report.fail(f"nothing stored: {type(exc).__name__}: {exc}")
        if dry_run:
            return report
        with sessions() as session, session.begin():
            run = _run_row(report, source, started)
            session.add(run)
            session.flush()
            report.run_id = run.id
    return report


def _ingest_in(
    session: Session,
    report: IngestReport,
    source: str,
    started: dt.datetime,
    today: dt.date,
    progress: ProgressCallback | None,
) -> None:
    with report.path.open("rb") as stream:
        binary = binary_reason(stream.read(BINARY_SNIFF_BYTES))
    if (
        binary
    ):  # rejected as a whole: a PNG or random bytes would otherwise become "papers" or 1,000 line errors
        report.fail(f"{binary}: nothing was read from it")
        run = _run_row(report, source, started)
        session.add(run)
        session.flush()
        report.run_id = run.id
        return
    decoding = Decoding()
    head, pieces = sniff(decode_pieces(_byte_pieces(report.path, progress), decoding))
    if report.format is None:
        report.format = detect_format(head)
    report.encoding = decoding.summary()
    if not head.strip():
        report.fail("the file is empty: no papers in it")
    elif report.format is None:
        first = head.strip().splitlines()[0][:60]
        report.fail(f"cannot tell the format (the file starts {first!r}); give --format", line=1)
    else:
        store = PaperStore(session, source, started)
        try:
            for item in parse(report.format, pieces, today=today):
                if isinstance(item, PaperRecord):
                    store.add(item)
                else:
                    _note(report, item)
        except ParseError as exc:
            report.rejected += 1
            report.fail(f"not in {report.format} format: {exc.message}", line=exc.line)
        store.flush()
        report.new, report.updated, report.duplicate = (
            store.counts.new,
            store.counts.updated,
            store.counts.duplicate,
        )
        report.encoding = decoding.summary()
        report.issues.extend(ParseIssue(None, note, skipped=False) for note in decoding.notes)
        if report.status != "failed" and store.counts.total == 0:
            report.fail("no papers found in the file")
    run = _run_row(report, source, started)
    session.add(run)
    session.flush()
    report.run_id = run.id


def _note(report: IngestReport, issue: ParseIssue) -> None:
    if issue.skipped:
        report.rejected += 1
    if len(report.issues) < MAX_STORED_ISSUES:
        report.issues.append(issue)


def _run_row(report: IngestReport, source: str, started: dt.datetime) -> IngestRun:
    messages = [
        {"line": issue.line, "level": "error" if issue.skipped else "warning", "message": issue.message}
        for issue in report.issues
    ]
    if len(report.issues) >= MAX_STORED_ISSUES:
        messages.append({"line": None, "level": "error", "message": f"{report.rejected} rejected in all"})
    return IngestRun(
        source=source[:300],
        path=str(report.path),
        sha256=report.sha256,
        format=report.format,
        status=report.status,
        new=report.new,
        updated=report.updated,
        duplicate=report.duplicate,
        rejected=report.rejected,
        errors=messages,
        started_at=started,
        finished_at=utcnow(),
    )
