"""Where new dumps come from: a drop folder, and HTTP feeds polled with conditional requests.

Drop folder: each new file is ingested once (the store skips a file it has already read, by checksum),
then moved to `processed/`, or to `rejected/` with `<name>.error.txt` beside it saying why. A crash
between ingesting and moving only means the next scan ingests it again, which is a reported no-op.

HTTP feeds: one GET with If-None-Match / If-Modified-Since, a timeout, retries with exponential
backoff on timeouts, connection errors, 429 and 5xx (a 4xx is permanent), and a size limit enforced
while streaming. The body goes to a temporary file, never wholly into memory. The Source row records
every poll: when, the outcome, and the error in words. The validators (ETag, Last-Modified) are saved
only after the body was ingested, so a failed ingest is fetched again in full next time.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, select, update

from service.clock import Clock
from service.config import Settings
from service.db import session_scope
from service.feeds import FetchError, feed_client, fetch
from service.ingest.runs import IngestReport, ingest_file
from service.models import IngestRun, Source
from service.oplog import log_event

log = logging.getLogger("paperboy.sources")

PROCESSED = "processed"
REJECTED = "rejected"
_IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".error.txt", ".errors.txt")


# --- drop folder -------------------------------------------------------------------------------


@dataclass
class DropResult:
    """What happened to one file of the drop folder."""

    name: str
    outcome: str  # processed|rejected
    moved_to: Path
    ingest: IngestReport | None = None
    error: str | None = None


def pending_drop_files(drop_dir: Path, *, settle_s: float, wall_now: float | None = None) -> list[Path]:
    """Files waiting in the drop folder, oldest name first.

    Skipped: folders, hidden files, partial downloads (.part, .tmp, ...), and files modified in the last
    `settle_s` seconds, which may still be being written (writers should write elsewhere and rename).
    """
    if not drop_dir.is_dir():
        return []
    wall_now = time.time() if wall_now is None else wall_now
    files = []
    for path in sorted(drop_dir.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(_IGNORED_SUFFIXES):
            continue
        if wall_now - path.stat().st_mtime < settle_s:
            continue
        files.append(path)
    return files


def scan_drop_folder(
    engine: Engine, settings: Settings, clock: Clock, should_stop: Callable[[], bool] = lambda: False
) -> list[DropResult]:
    """Ingest every settled file in the drop folder, then move it out of the way."""
    results = []
    for path in pending_drop_files(settings.resolved_drop_dir, settle_s=settings.drop_settle_s):
        if should_stop():
            break
        try:
            results.append(_ingest_drop_file(engine, settings, clock, path))
        except FileNotFoundError:
            # Taken by another process scanning the same folder (a cron `ingest-sources` beside the
            # service); whoever moved it has recorded it.
            log.info("drop file %s was moved away by another process", path.name)
    return results


def _ingest_drop_file(engine: Engine, settings: Settings, clock: Clock, path: Path) -> DropResult:
    size = path.stat().st_size
    if size > settings.ingest_max_bytes:
        limit = settings.ingest_max_bytes
        return _reject(
            path, f"{path.name}: {size} bytes is over the limit of {limit} (INGEST_MAX_BYTES)", clock
        )
    try:
        report = ingest_file(engine, path, source="drop")
    except Exception as exc:  # an unreadable file must not stop the folder; it is set aside instead
        return _reject(path, f"{path.name}: {type(exc).__name__}: {exc}", clock)
    log_ingest_run(report, source="drop", where=path.name)
    if report.status == "failed":
        return _reject(path, problems(report, path.name), clock, ingest=report)
    moved = _move(path, path.parent / PROCESSED, clock)
    if report.errors:
        # The good papers landed; the problems are kept next to the file for the operator.
        _note(moved, ".errors.txt", problems(report, path.name))
    return DropResult(path.name, "processed", moved, ingest=report)


def problems(report: IngestReport, where: str) -> str:
    """The errors of an ingest run, one per line, each naming the file (or URL) and line."""
    lines = [f"{where}: {issue}" for issue in report.issues if issue.skipped]
    if report.rejected > len(lines):
        lines.append(f"{where}: {report.rejected} rejected in all")
    return "\n".join(lines) or f"{where}: {report.status}"


def log_ingest_run(report: IngestReport, *, source: str, where: str) -> None:
    """The one structured line per ingest run."""
    log_event(
        log,
        "ingest_run",
        source=source,
        file=where,
        status=report.status,
        format=report.format,
        new=report.new,
        updated=report.updated,
        duplicate=report.duplicate,
        rejected=report.rejected,
        run_id=report.run_id or report.previous_run_id,
        level=logging.WARNING if report.status == "failed" else logging.INFO,
    )


def _reject(path: Path, error: str, clock: Clock, ingest: IngestReport | None = None) -> DropResult:
    moved = _move(path, path.parent / REJECTED, clock)
    _note(moved, ".error.txt", error)
    log_event(log, "drop_rejected", file=path.name, moved_to=str(moved), error=error, level=logging.WARNING)
    return DropResult(path.name, "rejected", moved, ingest=ingest, error=error)


def _move(path: Path, folder: Path, clock: Clock) -> Path:
    """Move into `folder`, never overwriting an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


def _note(moved: Path, suffix: str, text: str) -> None:
    moved.with_name(moved.name + suffix).write_text(text.rstrip() + "\n", encoding="utf-8")


# --- HTTP feeds --------------------------------------------------------------------------------


@dataclass
class PollResult:
    """One poll of one source, as recorded on its row."""

    source: str
    status: str  # ingested|unchanged|not-modified|failed|rejected
    error: str | None = None
    ingest: IngestReport | None = None
    attempts: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def poll_source(
    engine: Engine, source_id: int, settings: Settings, clock: Clock, client: httpx.Client
) -> PollResult:
    """Poll one HTTP source, ingest what it returned, and write the outcome on its row."""
    with session_scope(engine) as session:
        src = session.get(Source, source_id)
        if src is None:
            raise LookupError(f"source id {source_id} does not exist")
        name, url, fmt, etag, modified = src.name, src.url, src.format, src.etag, src.last_modified
    result = PollResult(name, "failed")
    new_etag, new_modified = etag, modified
    with tempfile.NamedTemporaryFile(prefix="paperboy-feed-", suffix=".dump") as sink:
        try:
            fetched = fetch(
                client,
                url,
                sink,
                etag=etag,
                last_modified=modified,
                max_bytes=settings.ingest_max_bytes,
                retries=settings.http_retries,
                backoff_s=settings.http_backoff_s,
                sleep=clock.sleep,
            )
        except FetchError as exc:
            result.error, result.attempts = str(exc), exc.attempts
        else:
            result.attempts = fetched.attempts
            if fetched.not_modified:
                result.status = "not-modified"
            else:
                result = _ingest_fetched(engine, result, Path(sink.name), url, fmt)
                if result.status in ("ingested", "unchanged"):
                    new_etag, new_modified = fetched.etag, fetched.last_modified
    with session_scope(engine) as session:
        src = session.get(Source, source_id)
        if src is not None:  # removed while we polled: nothing to record on
            src.last_polled_at = clock.now()
            src.last_status = result.status
            src.last_error = result.error
            src.etag, src.last_modified = new_etag, new_modified
    if result.status in ("failed", "rejected"):
        log_event(
            log,
            "source_poll",
            source=name,
            status=result.status,
            attempts=result.attempts,
            error=result.error,
        )
    return result


def _ingest_fetched(engine: Engine, result: PollResult, path: Path, url: str, fmt: str | None) -> PollResult:
    try:
        report = ingest_file(engine, path, fmt=fmt, source=result.source)
    except Exception as exc:  # recorded on the source row; the next poll tries again
        result.status, result.error = "failed", f"ingest of {url} failed: {type(exc).__name__}: {exc}"
        return result
    if report.run_id is not None:
        # The run read a temporary file; what the operator wants to see is the URL it came from.
        with session_scope(engine) as session:
            session.execute(update(IngestRun).where(IngestRun.id == report.run_id).values(path=url))
    log_ingest_run(report, source=result.source, where=url)
    result.ingest = report
    if report.status == "failed":
        result.status, result.error = "rejected", problems(report, url)
    elif report.status == "skipped":  # same bytes as an earlier poll (a server without validators)
        result.status = "unchanged"
    else:
        result.status = "ingested"
        result.error = problems(report, url) if report.errors else None
    return result


def poll_all_sources(engine: Engine, settings: Settings, clock: Clock) -> list[PollResult]:
    """Poll every enabled source once (sources from settings are registered first)."""
    register_configured_sources(engine, settings)
    with session_scope(engine) as session:
        ids = list(session.scalars(select(Source.id).where(Source.enabled.is_(True)).order_by(Source.name)))
    if not ids:
        return []
    client = feed_client(
        timeout_s=settings.http_timeout_s, allow_private=settings.feed_allow_private_addresses
    )
    with client:
        return [poll_source(engine, source_id, settings, clock, client) for source_id in ids]


def register_configured_sources(engine: Engine, settings: Settings) -> None:
    """Sources named in settings (HTTP_SOURCES) exist as rows; their URL follows the setting."""
    if not settings.http_sources:
        return
    with session_scope(engine) as session:
        for name, url in settings.http_sources.items():
            src = session.scalar(select(Source).where(Source.name == name))
            if src is None:
                session.add(Source(name=name, url=url))
            elif src.url != url:
                src.url, src.etag, src.last_modified = url, None, None


@dataclass
class IngestPass:
    """One run of the ingest job: the drop folder, then the HTTP sources."""

    drops: list[DropResult]
    polls: list[PollResult]

    @property
    def failed(self) -> bool:
        return any(d.outcome == "rejected" for d in self.drops) or any(
            p.status in ("failed", "rejected") for p in self.polls
        )


def run_ingest_pass(
    engine: Engine, settings: Settings, clock: Clock, should_stop: Callable[[], bool] = lambda: False
) -> IngestPass:
    """Everything new from the drop folder and the feeds, once."""
    drops = scan_drop_folder(engine, settings, clock, should_stop)
    polls = [] if should_stop() else poll_all_sources(engine, settings, clock)
    stored = [
        r.ingest for r in (*drops, *polls) if r.ingest is not None and (r.ingest.new or r.ingest.updated)
    ]
    if stored and not should_stop():
        from service.ingest.embeddings import embed_new_papers

        embed_new_papers(engine, settings)  # here, not in the first digest of the next dispatch pass
    return IngestPass(drops, polls)
