"""The Hugging Face daily_papers API JSON: an array of items, each wrapping a `paper` object.

    [{"paper": {"id": "2401.01234", "title": "...", "summary": "...", "authors": [{"name": ...}],
                "publishedAt": "2024-01-02T18:00:00.000Z", "upvotes": 12, "githubRepo": "https://..."},
      "title": "...", "publishedAt": "...", "organization": {"name": "x", "fullname": "X Lab"}}, ...]

The array is decoded item by item (json.JSONDecoder.raw_decode over a sliding buffer), so a 50 MB
response -- even on a single line -- is never held whole in memory.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

from service.ingest.normalize import arxiv_abs_url, finish_record, github_repo_url
from service.ingest.parsers.fields import (
    FieldProblem,
    arxiv_field,
    date_field,
    int_field,
    names_field,
    text_field,
)
from service.ingest.records import PaperRecord, ParseError, ParseIssue, ParseItem

MAX_ITEM = 8 << 20  # one paper item is a few KiB; more than this unparsed means the JSON is broken
_WHITESPACE = " \t\r\n"


class _Buffer:
    """A sliding window over the pieces, with line numbers for positions in it."""

    def __init__(self, pieces: Iterable[str]) -> None:
        self._pieces = iter(pieces)
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line number at self._counted
        self._counted = 0

    def more(self, at_least: int = 1) -> bool:
        """Append at least `at_least` characters (or up to EOF); False at EOF."""
        if self.eof:
            return False
        if self.pos > 65536:  # drop what has been consumed
            self.line_at(self.pos)
            self.text, self._counted = self.text[self.pos :], self._counted - self.pos
            self.pos = 0
        added = 0
        chunks = [self.text]
        for piece in self._pieces:
            chunks.append(piece)
            added += len(piece)
            if added >= at_least:
                break
        else:
            self.eof = True
        self.text = "".join(chunks)
        return added > 0

    def skip_space(self) -> str | None:
        """The next non-blank character (not consumed), reading more as needed; None at EOF."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None

    def line_at(self, pos: int) -> int:
        if pos > self._counted:
            self._line += self.text.count("\n", self._counted, pos)
            self._counted = pos
        return self._line


def iter_array(pieces: Iterable[str]) -> Iterator[tuple[int, Any] | ParseIssue]:
    """(line, value) for each element of a top-level JSON array; an issue where the JSON breaks."""
    decoder = json.JSONDecoder()
    buf = _Buffer(pieces)
    first = buf.skip_space()
    if first != "[":
        found = "an empty file" if first is None else f"{first!r}"
        raise ParseError(f"expected a JSON array ('['), found {found}", line=1)
    buf.pos += 1
    expect_value = True
    while True:
        char = buf.skip_space()
        if char is None:
            yield ParseIssue(buf.line_at(buf.pos), "JSON array is not closed (truncated file?)")
            return
        if char == "]":
            return
        if not expect_value:
            if char != ",":
                line = buf.line_at(buf.pos)
                yield ParseIssue(
                    line, f"expected ',' or ']' between items, found {char!r}; the rest is not read"
                )
                return
            buf.pos += 1
            expect_value = True
            continue
        line = buf.line_at(buf.pos)
        while True:
            try:
                value, end = decoder.raw_decode(buf.text, buf.pos)
                break
            except json.JSONDecodeError as exc:
                if len(buf.text) - buf.pos > MAX_ITEM or not buf.more(max(len(buf.text) - buf.pos, 4096)):
                    where = buf.line_at(min(exc.pos, len(buf.text)))
                    yield ParseIssue(where, f"invalid or truncated JSON ({exc.msg}); the rest is not read")
                    return
        buf.pos = end
        expect_value = False
        yield line, value


def _organization(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("fullname") or value.get("name")
    return text_field("organization", value)


def _arxiv_id(value: Any) -> str | None:
    return arxiv_field("paper.id", value)


def _authors(value: Any) -> list[str] | None:
    return names_field("authors", value) or None


def _upvotes(value: Any) -> int | None:
    return int_field("upvotes", value)


def _published(value: Any) -> dt.date | None:
    return date_field("publishedAt", value)


def _code_url(value: Any) -> str | None:
    return github_repo_url(text_field("githubRepo", value) or "")


def record_from_item(item: dict[str, Any], line: int) -> tuple[PaperRecord, list[str]]:
    """A record from one API item (or a bare paper object); FieldProblem if title/abstract unusable."""
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    title = text_field("title", paper.get("title") or item.get("title"), required=True)
    abstract = text_field("summary", paper.get("summary") or item.get("summary"), required=True)
    assert title is not None and abstract is not None
    record = PaperRecord(title, abstract, line)
    dropped: list[str] = []
    get = paper.get
    # (attribute, converter, value) in the order problems are reported; a None value converts to None.
    for attr, convert, value in (
        ("arxiv_id", _arxiv_id, get("id")),
        ("authors", _authors, get("authors")),
        ("upvotes", _upvotes, get("upvotes", item.get("upvotes"))),
        ("published_on", _published, get("publishedAt")),
        ("organization", _organization, item.get("organization") or get("organization")),
        ("code_url", _code_url, get("githubRepo")),
    ):
        if value is None:
            continue
        try:
            converted = convert(value)
        except FieldProblem as problem:
            dropped.append(str(problem))
            continue
        if converted is not None:
            setattr(record, attr, converted)
    if record.authors:
        record.author_count = len(record.authors)
    if record.arxiv_id:
        record.url = arxiv_abs_url(record.arxiv_id)
    record = finish_record(record)
    if record.code_url and record.code_url not in record.links:
        record.links.append(record.code_url)
    return record, dropped


def parse_hf_api(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from a daily_papers API response."""
    for entry in iter_array(pieces):
        if isinstance(entry, ParseIssue):
            yield entry
            continue
        line, item = entry
        if not isinstance(item, dict):
            yield ParseIssue(line, f"expected a paper object, found {type(item).__name__}; skipped")
            continue
        try:
            record, dropped = record_from_item(item, line)
        except FieldProblem as problem:
            yield ParseIssue(line, f"{problem}; paper skipped")
            continue
        for message in dropped:
            yield ParseIssue(line, f"{message}; field ignored", skipped=False)
        yield record
