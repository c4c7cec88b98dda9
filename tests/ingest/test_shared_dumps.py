"""The real dumps in ../shared/dumps, read byte for byte as a user hands them over."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.ingest.runs import ingest_file
from service.models import IngestRun, Paper
from tests.conftest import shared_path
from tests.ingest.helpers import TODAY, parse_file

# tests/ingest/this_file -> repository root -> ../shared/dumps
DUMPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "dumps"
EXPECTED = {"000": ("listing", 119), "001": ("listing", 119), "003": ("daily_page", 60)}


def dump_files() -> list[Path]:
    folder = shared_path("dumps")
    assert folder.resolve() == DUMPS.resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert [p.name[:3] for p in files] == list(EXPECTED)
    return files


def test_every_dump_parses_without_a_single_issue() -> None:
    for path in dump_files():
        records, issues, fmt = parse_file(path)
        expected_format, expected_count = EXPECTED[path.name[:3]]
        assert (fmt, len(records), issues) == (expected_format, expected_count, [])
        assert all(r.title and r.abstract and not r.title.startswith("Subscribe") for r in records)


def test_the_daily_page_metadata_is_kept() -> None:
    path = next(p for p in dump_files() if p.name.startswith("003"))
    records, _, _ = parse_file(path)
    assert sum(r.published_on is not None for r in records) == 59  # one paper has no metadata block
    assert sum(r.author_count is not None for r in records) == 54
    assert sum(r.organization is not None for r in records) == 5
    assert sum(r.upvotes is not None for r in records) == 14
    assert all(r.published_on <= TODAY for r in records if r.published_on)


def test_the_three_dumps_hold_exactly_249_distinct_papers(committed_engine: Engine) -> None:
    reports = [ingest_file(committed_engine, path, today=TODAY) for path in dump_files()]
    assert [r.new + r.updated + r.duplicate for r in reports] == [119, 119, 60]
    assert all(r.status == "done" and r.rejected == 0 for r in reports)
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Paper)) == 249
        assert sum(r.new for r in reports) == 249

    again = [ingest_file(committed_engine, path, today=TODAY) for path in dump_files()]
    assert [r.status for r in again] == ["skipped"] * 3
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Paper)) == 249
        assert session.scalar(select(func.count()).select_from(IngestRun)) == 3
