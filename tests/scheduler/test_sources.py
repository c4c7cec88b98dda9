"""Drop folder and HTTP feeds against a real loopback server: each new dump ingested once."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.clock import ManualClock
from service.config import Settings
from service.models import IngestRun, Paper, Source
from service.sources import (
    PROCESSED,
    REJECTED,
    pending_drop_files,
    poll_all_sources,
    poll_source,
    register_configured_sources,
    run_ingest_pass,
    scan_drop_folder,
)
from tests.scheduler.feedserver import FeedServer, Reply

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)


def jsonl(*titles: str) -> bytes:
    rows = [{"title": t, "abstract": f"We study {t.lower()} in depth."} for t in titles]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        drop_settle_s=0,
        http_timeout_s=2.0,
        http_retries=2,
        http_backoff_s=1.5,
        ingest_max_bytes=64 * 1024,
        feed_allow_private_addresses=True,  # the feed server is on loopback
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer().running() as server:
        yield server


def paper_count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Paper)) or 0


def add_source(engine: Engine, name: str, url: str, fmt: str | None = None) -> int:
    with Session(engine) as s, s.begin():
        src = Source(name=name, url=url, format=fmt)
        s.add(src)
        s.flush()
        return src.id


def source_row(engine: Engine, source_id: int) -> Source:
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(Source, source_id)
        assert row is not None
        return row


# --- drop folder -------------------------------------------------------------------------------


def test_drop_folder_ingests_each_file_once_and_moves_it(
    committed_engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    drop = settings.resolved_drop_dir
    drop.mkdir(parents=True)
    (drop / "a.jsonl").write_bytes(jsonl("Sparse attention at scale", "KV cache compression"))
    (drop / "b.part").write_bytes(jsonl("Still downloading"))  # partial download: left alone
    (drop / ".hidden.jsonl").write_bytes(jsonl("Hidden"))
    results = scan_drop_folder(committed_engine, settings, clock)
    assert [(r.name, r.outcome) for r in results] == [("a.jsonl", "processed")]
    assert results[0].ingest is not None and results[0].ingest.new == 2
    assert (drop / PROCESSED / "a.jsonl").exists() and not (drop / "a.jsonl").exists()
    assert (drop / "b.part").exists() and (drop / ".hidden.jsonl").exists()
    assert paper_count(committed_engine) == 2
    # The same bytes dropped again: ingested as a no-op, moved aside without clobbering the first.
    (drop / "a.jsonl").write_bytes(jsonl("Sparse attention at scale", "KV cache compression"))
    again = scan_drop_folder(committed_engine, settings, clock)
    assert again[0].outcome == "processed" and again[0].ingest is not None
    assert again[0].ingest.status == "skipped"
    assert len(list((drop / PROCESSED).glob("a*.jsonl"))) == 2
    assert paper_count(committed_engine) == 2
    assert scan_drop_folder(committed_engine, settings, clock) == []  # nothing new: nothing done


def test_unreadable_file_is_rejected_with_the_error_beside_it(
    committed_engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    drop = settings.resolved_drop_dir
    drop.mkdir(parents=True)
    (drop / "empty.txt").write_bytes(b"")
    (drop / "huge.jsonl").write_bytes(b"x" * (settings.ingest_max_bytes + 1))
    (drop / "ok.jsonl").write_bytes(jsonl("Mixture of experts routing"))
    results = {r.name: r for r in scan_drop_folder(committed_engine, settings, clock)}
    assert results["ok.jsonl"].outcome == "processed"
    assert results["empty.txt"].outcome == "rejected"
    assert results["huge.jsonl"].outcome == "rejected"
    note = (drop / REJECTED / "empty.txt.error.txt").read_text()
    assert "empty.txt" in note and "empty" in note
    assert "INGEST_MAX_BYTES" in (drop / REJECTED / "huge.jsonl.error.txt").read_text()
    assert (drop / REJECTED / "huge.jsonl").stat().st_size == settings.ingest_max_bytes + 1  # kept intact
    assert paper_count(committed_engine) == 1


def test_partly_bad_file_is_processed_with_its_problems_noted(
    committed_engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    drop = settings.resolved_drop_dir
    drop.mkdir(parents=True)
    (drop / "mixed.jsonl").write_bytes(jsonl("Good paper one") + b"{not json\n" + jsonl("Good paper two"))
    [result] = scan_drop_folder(committed_engine, settings, clock)
    assert result.outcome == "processed"
    assert result.ingest is not None and (result.ingest.new, result.ingest.rejected) == (2, 1)
    note = (drop / PROCESSED / "mixed.jsonl.errors.txt").read_text()
    assert "mixed.jsonl: line 2" in note


def test_files_still_being_written_wait_for_the_next_scan(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_bytes(b"{}")
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"{}")
    stamp = fresh.stat().st_mtime
    os.utime(old, (stamp - 60, stamp - 60))
    assert pending_drop_files(tmp_path, settle_s=5, wall_now=stamp + 1) == [old]
    assert pending_drop_files(tmp_path, settle_s=5, wall_now=stamp + 10) == [fresh, old]
    assert pending_drop_files(tmp_path / "missing", settle_s=0) == []


# --- HTTP feeds --------------------------------------------------------------------------------


def test_conditional_requests_fetch_a_feed_only_when_it_changed(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    body = jsonl("Retrieval augmented generation", "Speculative decoding")
    url = feed.script(
        "/feed.jsonl",
        Reply(
            body=body,
            kind="conditional",
            headers={"ETag": '"v1"', "Last-Modified": "Mon, 23 Nov 2026 05:00:00 GMT"},
        ),
    )
    sid = add_source(committed_engine, "feed", url)
    with httpx.Client(timeout=2) as client:
        first = poll_source(committed_engine, sid, settings, clock, client)
        assert first.status == "ingested" and first.ingest is not None and first.ingest.new == 2
        row = source_row(committed_engine, sid)
        assert (row.etag, row.last_status, row.last_error) == ('"v1"', "ingested", None)
        assert row.last_modified == "Mon, 23 Nov 2026 05:00:00 GMT"
        assert row.last_polled_at == T0
        clock.advance(minutes=15)
        second = poll_source(committed_engine, sid, settings, clock, client)
    assert second.status == "not-modified"
    sent = feed.requests_to("/feed.jsonl")[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 23 Nov 2026 05:00:00 GMT"
    assert "if-none-match" not in feed.requests_to("/feed.jsonl")[0].headers
    assert source_row(committed_engine, sid).last_polled_at == T0 + dt.timedelta(minutes=15)
    with Session(committed_engine) as s:
        run = s.scalars(select(IngestRun).where(IngestRun.source == "feed")).one()
    assert run.path == url  # the run names the URL, not the temporary file
    assert paper_count(committed_engine) == 2


def test_transient_failures_are_retried_with_backoff(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script(
        "/flaky",
        Reply(503, b"busy"),
        Reply(200, jsonl("Long context evaluation", "Another paper", "Third paper"), kind="drop"),
        Reply(200, jsonl("Long context evaluation")),
    )
    sid = add_source(committed_engine, "flaky", url)
    with httpx.Client(timeout=2) as client:
        result = poll_source(committed_engine, sid, settings, clock, client)
    assert result.status == "ingested" and result.attempts == 3
    assert clock.slept == [1.5, 3.0]  # exponential backoff, on the injected clock: no real waiting
    assert len(feed.requests_to("/flaky")) == 3


def test_retry_after_is_honoured(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script(
        "/limited", Reply(429, b"slow down", headers={"Retry-After": "20"}), Reply(200, jsonl("X"))
    )
    sid = add_source(committed_engine, "limited", url)
    with httpx.Client(timeout=2) as client:
        assert poll_source(committed_engine, sid, settings, clock, client).status == "ingested"
    assert clock.slept == [20.0]


def test_failures_are_recorded_on_the_source_and_keep_the_old_validators(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script("/gone", Reply(404, b"no such feed"))
    sid = add_source(committed_engine, "gone", url)
    with Session(committed_engine) as s, s.begin():
        src = s.get(Source, sid)
        assert src is not None
        src.etag = '"old"'
    with httpx.Client(timeout=2) as client:
        result = poll_source(committed_engine, sid, settings, clock, client)
    assert result.status == "failed" and result.attempts == 1  # 404 is permanent: not retried
    row = source_row(committed_engine, sid)
    assert row.last_status == "failed" and row.last_error is not None
    assert "HTTP 404" in row.last_error and url in row.last_error
    assert row.etag == '"old"' and row.last_polled_at == T0
    assert clock.slept == []


def test_timeouts_are_retried_then_recorded(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script("/slow", Reply(200, jsonl("Late"), kind="slow", delay_s=1.0))
    sid = add_source(committed_engine, "slow", url)
    settings = settings.model_copy(update={"http_retries": 1})
    with httpx.Client(timeout=0.2) as client:
        result = poll_source(committed_engine, sid, settings, clock, client)
    assert result.status == "failed" and result.attempts == 2
    assert (
        result.error is not None
        and "timed out" in result.error
        and "gave up after 2 attempts" in result.error
    )
    assert source_row(committed_engine, sid).last_error == result.error
    assert paper_count(committed_engine) == 0


def test_size_limit_aborts_the_download(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    endless = feed.script("/endless", Reply(200, kind="endless"))
    announced = feed.script("/announced", Reply(200, b"y" * (settings.ingest_max_bytes + 10)))
    ids = [
        add_source(committed_engine, "endless", endless),
        add_source(committed_engine, "announced", announced),
    ]
    with httpx.Client(timeout=2) as client:
        results = [poll_source(committed_engine, sid, settings, clock, client) for sid in ids]
    for result in results:
        assert result.status == "failed" and result.attempts == 1
        assert result.error is not None and "size limit" in result.error
    # The server meant to send 200 MB; the client hung up a little after the 64 KiB limit.
    assert feed.bytes_sent.get("/endless", 0) < 50 * 1024 * 1024
    assert paper_count(committed_engine) == 0


def test_a_feed_in_no_known_format_is_rejected_and_recorded(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script("/junk", Reply(200, b"\x00\x01\x02 binary junk \xff" * 10))
    sid = add_source(committed_engine, "junk", url)
    with httpx.Client(timeout=2) as client:
        result = poll_source(committed_engine, sid, settings, clock, client)
    assert result.status == "rejected"
    row = source_row(committed_engine, sid)
    assert row.last_status == "rejected" and row.last_error is not None and url in row.last_error
    assert row.etag is None


def test_ingest_pass_covers_the_drop_folder_and_configured_sources(
    committed_engine: Engine, settings: Settings, clock: ManualClock, feed: FeedServer
) -> None:
    url = feed.script("/papers.jsonl", Reply(body=jsonl("Diffusion transformers", "State space models")))
    settings = settings.model_copy(update={"http_sources": {"papers": url}})
    drop = settings.resolved_drop_dir
    drop.mkdir(parents=True)
    (drop / "local.jsonl").write_bytes(jsonl("Diffusion transformers", "Tokenizer-free models"))
    result = run_ingest_pass(committed_engine, settings, clock)
    assert [d.outcome for d in result.drops] == ["processed"]
    assert [p.status for p in result.polls] == ["ingested"] and not result.failed
    assert paper_count(committed_engine) == 3  # the shared paper is stored once
    # A setting that changes the URL moves the source and forgets its validators.
    register_configured_sources(
        committed_engine, settings.model_copy(update={"http_sources": {"papers": url + "?v=2"}})
    )
    with Session(committed_engine) as s:
        assert s.scalars(select(Source.url)).all() == [url + "?v=2"]
    with Session(committed_engine) as s, s.begin():
        s.execute(Source.__table__.update().values(enabled=False))
    assert poll_all_sources(committed_engine, settings.model_copy(update={"http_sources": {}}), clock) == []
