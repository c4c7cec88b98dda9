"""Shared by the two plain-text formats: cleaned lines, and a lookahead over them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from service.ingest.normalize import checked_text
from service.ingest.reading import MAX_LINE, numbered_lines
from service.ingest.records import ParseIssue

T = TypeVar("T")

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


class Lookahead(Generic[T]):
    """Iterate over items, passing issues through in order, with a peek at the next real item."""

    def __init__(self, items: Iterable[T | ParseIssue]) -> None:
        self._items = iter(items)
        self._ahead: deque[T | ParseIssue] = deque()

    def next(self) -> T | ParseIssue | None:
        if self._ahead:
            return self._ahead.popleft()
        return next(self._items, None)

    def peek(self) -> T | None:
        """The next item that is not an issue, without consuming it (None at the end)."""
        for item in self._ahead:
            if not isinstance(item, ParseIssue):
                return item
        for item in self._items:
            self._ahead.append(item)
            if not isinstance(item, ParseIssue):
                return item
        return None
