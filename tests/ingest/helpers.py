"""Helpers for the ingest tests: fixture paths and parsing a fixture the way ingest does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from service.ingest.detect import detect_format, sniff
from service.ingest.parsers import parse
from service.ingest.reading import Decoding, read_text_lines
from service.ingest.records import PaperRecord, ParseIssue

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dumps"
TODAY = dt.date(2026, 11, 23)


def parse_file(path: Path, fmt: str | None = None) -> tuple[list[PaperRecord], list[ParseIssue], str]:
    """Records, issues and the format of a file, as `paperboy ingest` would read it."""
    head, pieces = sniff(read_text_lines(path, Decoding()))
    fmt = fmt or detect_format(head)
    assert fmt is not None, f"{path.name}: format not detected"
    items = list(parse(fmt, pieces, today=TODAY))
    records = [item for item in items if isinstance(item, PaperRecord)]
    issues = [item for item in items if isinstance(item, ParseIssue)]
    return records, issues, fmt


def fixture(name: str) -> Path:
    return FIXTURES / name
