"""JSON Lines: paperboy's own import/export format, one paper object per line.

    {"title": "...", "abstract": "...", "authors": ["A. Author"], "author_count": 1,
     "organization": null, "published_on": "2024-01-02", "upvotes": 3, "arxiv_id": "2401.01234",
     "url": "https://arxiv.org/abs/2401.01234", "code_url": null, "links": [], "source": "...",
     "first_seen_at": "2026-11-23T12:00:00+00:00"}

Only title and abstract are required. `summary`, `organisation` and `published` are accepted as
aliases so hand-written files work too; unknown keys are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from service.ingest.normalize import finish_record
from service.ingest.parsers.fields import (
    FieldProblem,
    arxiv_field,
    date_field,
    int_field,
    links_field,
    names_field,
    text_field,
)
from service.ingest.parsers.text_units import excerpt
from service.ingest.reading import MAX_LINE, numbered_lines
from service.ingest.records import PaperRecord, ParseIssue, ParseItem

# What `paperboy export` writes, in this order.
EXPORT_FIELDS = (
    "title",
    "abstract",
    "authors",
    "author_count",
    "organization",
    "published_on",
    "upvotes",
    "arxiv_id",
    "url",
    "code_url",
    "links",
    "source",
    "first_seen_at",
)


def _url(name: str, value: Any) -> str | None:
    url = text_field(name, value)
    if url is not None and not url.startswith(("http://", "https://")):
        raise FieldProblem(f"{name} is not an http(s) URL: {excerpt(url)}")
    return url


# Optional fields: (record attribute, accepted keys, converter). Built once, not per line.
_OPTIONAL: tuple[tuple[str, tuple[str, ...], Callable[[str, Any], Any]], ...] = (
    ("authors", ("authors",), names_field),
    ("author_count", ("author_count",), int_field),
    ("organization", ("organization", "organisation"), text_field),
    ("published_on", ("published_on", "published"), date_field),
    ("upvotes", ("upvotes",), int_field),
    ("arxiv_id", ("arxiv_id",), arxiv_field),
    ("url", ("url",), _url),
    ("code_url", ("code_url",), _url),
    ("links", ("links",), links_field),
)


def record_from_object(obj: dict[str, Any], line: int) -> tuple[PaperRecord, list[str]]:
    """A record from one exported object; bad optional fields are dropped and named in the list.

    Raises FieldProblem when the title or abstract is unusable.
    """
    title = text_field("title", obj.get("title"), required=True)
    abstract = obj.get("abstract")
    abstract = text_field("abstract", obj.get("summary") if abstract is None else abstract, required=True)
    assert title is not None and abstract is not None
    record = PaperRecord(title=title, abstract=abstract, line=line)
    dropped: list[str] = []
    for attr, keys, convert in _OPTIONAL:
        value = obj.get(keys[0])
        if value is None and len(keys) > 1:
            value = obj.get(keys[1])
        if value is None:
            continue
        try:
            value = convert(keys[0], value)
        except FieldProblem as problem:
            dropped.append(str(problem))
            continue
        if value is not None:
            setattr(record, attr, value)
    if record.authors and record.author_count is None:
        record.author_count = len(record.authors)
    return finish_record(record), dropped


def parse_jsonl(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from a JSON Lines file."""
    for number, line in numbered_lines(pieces):
        if line is None:
            yield ParseIssue(number, f"line longer than {MAX_LINE // 1024} KiB; skipped")
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError on lone surrogates
            yield ParseIssue(number, f"not valid JSON ({exc}); skipped")
            continue
        if not isinstance(obj, dict):
            yield ParseIssue(number, f"expected a JSON object, found {type(obj).__name__}; skipped")
            continue
        try:
            record, dropped = record_from_object(obj, number)
        except FieldProblem as problem:
            yield ParseIssue(number, f"{problem}; paper skipped")
            continue
        for message in dropped:
            yield ParseIssue(number, f"{message}; field ignored", skipped=False)
        yield record
