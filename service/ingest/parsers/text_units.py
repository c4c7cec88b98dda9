"""Shared by the plain-text formats: cleaned, numbered lines and short excerpts for messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from service.ingest.normalize import checked_text
from service.ingest.reading import MAX_LINE, numbered_lines
from service.ingest.records import ParseIssue

Line = tuple[int, str]  # (line number, cleaned text; "" for a blank line)


def clean_lines(pieces: Iterable[str]) -> Iterator[Line | ParseIssue]:
    """Numbered, cleaned lines; overlong and binary lines become issues instead."""
    for number, raw in numbered_lines(pieces):
        if raw is None:
            limit = MAX_LINE // 1024
            yield ParseIssue(number, f"line longer than {limit} KiB is not a title or abstract; skipped")
            continue
        if not raw or raw.isspace():
            yield number, ""
            continue
        text, reason = checked_text(raw)
        if text is None:
            yield ParseIssue(number, f"{reason}; line skipped")
            continue
        yield number, text


def excerpt(text: str, size: int = 60) -> str:
    return repr(text if len(text) <= size else text[: size - 1] + "…")
