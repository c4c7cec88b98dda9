"""Whole files through `ingest_file`: run records, bad input, one transaction per file, big files."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.ingest.parsers import parse
from service.ingest.reading import read_text_lines
from service.ingest.records import PaperRecord
from service.ingest.runs import ingest_file
from service.models import IngestRun, Paper
from tests.ingest.helpers import TODAY, fixture

HEADER = "Get trending papers in your email inbox once a day!\nGet trending papers in your email inbox!\n"


def synthetic_listing(count: int, start: int = 0) -> str:
    abstract = (
        "We propose a method for the problem at hand and evaluate it on several benchmarks. "
        "It improves on strong baselines while using less memory, and the code is available. " * 6
    ).strip()
    body = "".join(
        f"Synthetic Paper Number {i}\n{abstract} Variant {i}.\n" for i in range(start, start + count)
    )
    return HEADER + "Subscribe" + body


def count_papers(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Paper)) or 0


def runs(engine: Engine) -> list[IngestRun]:
    with Session(engine) as session:
        return list(session.scalars(select(IngestRun).order_by(IngestRun.id)))


def test_a_run_is_recorded_and_the_same_file_again_is_a_no_op(committed_engine: Engine) -> None:
    report = ingest_file(committed_engine, fixture("papers.jsonl"), today=TODAY)
    assert (report.status, report.format, report.detected) == ("done", "jsonl", True)
    assert (report.new, report.updated, report.duplicate, report.rejected) == (3, 0, 0, 3)
    (run,) = runs(committed_engine)
    assert (run.format, run.status, run.new, run.rejected, run.sha256) == (
        "jsonl",
        "done",
        3,
        3,
        report.sha256,
    )
    assert run.source == "papers.jsonl" and run.path.endswith("papers.jsonl") and run.finished_at
    assert {"line": 3, "level": "error"}.items() <= run.errors[0].items()
    assert "not valid JSON" in run.errors[0]["message"]
    assert [e["level"] for e in run.errors].count("warning") == 2

    again = ingest_file(committed_engine, fixture("papers.jsonl"), today=TODAY)
    assert (again.status, again.previous_run_id, again.new) == ("skipped", run.id, 0)
    assert len(runs(committed_engine)) == 1 and count_papers(committed_engine) == 3

    forced = ingest_file(committed_engine, fixture("papers.jsonl"), today=TODAY, force=True)
    assert (forced.status, forced.new, forced.duplicate) == ("done", 0, 3)


def test_explicit_format_overrides_detection(committed_engine: Engine, tmp_path: Path) -> None:
    # Headerless, blank-line separated text would be detected as a daily page; --format says listing.
    path = tmp_path / "odd.txt"
    path.write_text("A Title\nAn abstract sentence.\nB Title\nAnother abstract.\n")
    report = ingest_file(committed_engine, path, fmt="listing")
    assert (report.format, report.detected, report.new) == ("listing", False, 2)


def test_dry_run_counts_but_stores_nothing(committed_engine: Engine) -> None:
    report = ingest_file(committed_engine, fixture("listing_small.txt"), dry_run=True)
    assert (report.status, report.new, report.run_id) == ("done", 3, None)
    assert count_papers(committed_engine) == 0 and runs(committed_engine) == []


@pytest.mark.parametrize(
    ("name", "new", "rejected"),
    [
        ("listing_bom_crlf.txt", 3, 0),
        ("listing_latin1.txt", 3, 0),
        ("listing_missing_lines.txt", 3, 2),
        ("listing_truncated.txt", 1, 1),
        ("arxiv_feed_truncated.xml", 1, 1),
        ("hf_daily_papers_truncated.json", 1, 1),
        ("daily_page_nasty.txt", 1, 3),
    ],
)
def test_bad_files_keep_their_good_papers(
    committed_engine: Engine, name: str, new: int, rejected: int
) -> None:
    report = ingest_file(committed_engine, fixture(name), today=TODAY)
    assert (report.status, report.new, report.rejected) == ("done", new, rejected)
    assert count_papers(committed_engine) == new
    assert all(error.startswith("line ") for error in report.errors)


def test_latin1_is_reported_as_such(committed_engine: Engine) -> None:
    report = ingest_file(committed_engine, fixture("listing_latin1.txt"))
    assert report.encoding == "utf-8, 2 line(s) as Windows-1252/Latin-1"
    with Session(committed_engine) as session:
        assert session.scalar(select(Paper.title).where(Paper.title.like("Caf%"))) == (
            "Café Models: Naïve Bayes Revisited"
        )


def test_empty_and_unrecognisable_files_fail_clearly(committed_engine: Engine, tmp_path: Path) -> None:
    empty = ingest_file(committed_engine, fixture("empty.txt"))
    assert empty.status == "failed" and empty.errors == ["the file is empty: no papers in it"]
    odd = tmp_path / "odd.html"
    odd.write_text("<html><body>not a dump</body></html>\n")
    unknown = ingest_file(committed_engine, odd)
    assert unknown.status == "failed" and "cannot tell the format" in unknown.errors[0]
    assert [r.status for r in runs(committed_engine)] == ["failed", "failed"]
    wrong = ingest_file(committed_engine, fixture("listing_small.txt"), fmt="atom")
    assert wrong.status == "failed" and "not in atom format" in wrong.errors[0]


def test_binary_garbage_in_the_middle(committed_engine: Engine, tmp_path: Path) -> None:
    good_before = synthetic_listing(2)
    good_after = synthetic_listing(2, start=2).split("Subscribe", 1)[1]
    garbage = random.Random(7).randbytes(6000)
    path = tmp_path / "garbage.txt"
    path.write_bytes(good_before.encode() + garbage + b"\n" + good_after.encode())
    report = ingest_file(committed_engine, path)
    assert report.status == "done" and report.new == 4 and report.rejected > 0
    assert any("binary data" in error for error in report.errors)
    with Session(committed_engine) as session:
        titles = set(session.scalars(select(Paper.title)))
    assert titles == {f"Synthetic Paper Number {i}" for i in range(4)}


def test_a_failure_mid_file_stores_nothing_from_it(committed_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(synthetic_listing(3000))  # ~3 MB: several batches are written before the failure

    def interrupt(done: int) -> None:
        if done > 2_500_000:
            raise KeyboardInterrupt("operator pressed Ctrl-C") from None

    with pytest.raises(KeyboardInterrupt):
        ingest_file(committed_engine, path, progress=interrupt)
    assert count_papers(committed_engine) == 0

    def broken_disk(done: int) -> None:
        if done > 2_500_000:
            raise OSError("read error")

    report = ingest_file(committed_engine, path, progress=broken_disk)
    assert report.status == "failed" and "OSError: read error" in report.errors[0]
    assert count_papers(committed_engine) == 0
    (run,) = runs(committed_engine)
    assert run.status == "failed" and run.new == 0


def test_a_50_mb_file_is_read_in_constant_memory(committed_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "fifty.txt"
    block = synthetic_listing(1000).split("Subscribe", 1)[1]
    with path.open("w") as out:
        out.write(HEADER + "Subscribe")
        written, round_ = 0, 0
        while written < 50 * 1024 * 1024:
            chunk = block.replace("Synthetic Paper Number ", f"Synthetic Paper {round_}-")
            out.write(chunk)
            written += len(chunk)
            round_ += 1
    expected = round_ * 1000

    tracemalloc.start()
    try:
        parsed = sum(1 for item in parse("listing", read_text_lines(path)) if isinstance(item, PaperRecord))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed == expected
    assert peak < 8 * 1024 * 1024, f"parsing a 50 MB file peaked at {peak / 1e6:.1f} MB"

    if committed_engine.dialect.name == "sqlite":  # storing 50 MB once is enough for the suite's time
        report = ingest_file(committed_engine, path)
        assert (report.status, report.new, report.rejected) == ("done", expected, 0)
        assert count_papers(committed_engine) == expected
