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

import orjson

from service.ingest.normalize import arxiv_id_among, finish_record
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
_OPTIONAL: tuple[tuple[str, str, str | None, Callable[[str, Any], Any]], ...] = (
    ("authors", "authors", None, names_field),
    ("author_count", "author_count", None, int_field),
    ("organization", "organization", "organisation", text_field),
    ("published_on", "published_on", "published", date_field),
    ("upvotes", "upvotes", None, int_field),
    ("arxiv_id", "arxiv_id", None, arxiv_field),
    ("url", "url", None, _url),
    ("code_url", "code_url", None, _url),
    ("links", "links", None, links_field),
)
# Where other tools' exports keep a paper's arXiv id (an `id` that is not one is passed over).
_ID_KEYS = ("id", "arxivId", "arxiv", "paper_id", "entry_id", "abs_url", "pdf_url", "link")
# int_field quotes the JSON of a value that is not a number; orjson may have changed a number in it.
_NUMBER_KEYS = frozenset(key for _, key, _, convert in _OPTIONAL if convert is int_field)


def record_from_object(obj: dict[str, Any], line: int) -> tuple[PaperRecord, list[str]]:
    """A record from one exported object; bad optional fields are dropped and named in the list.

    Raises FieldProblem when the title or abstract is unusable.
    """
    get = obj.get
    title = text_field("title", get("title"), required=True)
    abstract = get("abstract")
    abstract = text_field("abstract", get("summary") if abstract is None else abstract, required=True)
    assert title is not None and abstract is not None
    record = PaperRecord(title, abstract, line)
    dropped: list[str] = []
    for attr, key, alias, convert in _OPTIONAL:
        value = get(key)
        if value is None and alias is not None:
            value = get(alias)
        if value is None:
            continue
        try:
            value = convert(key, value)
        except FieldProblem as problem:
            dropped.append(str(problem))
            continue
        if value is not None:
            setattr(record, attr, value)
    if record.arxiv_id is None:
        # Other exports name the id differently: "id": "arXiv:0704.0001", "arxivId", "entry_id" (a URL).
        record.arxiv_id = arxiv_id_among(*(get(key) for key in _ID_KEYS))
    if record.authors and record.author_count is None:
        record.author_count = len(record.authors)
    return finish_record(record), dropped


def decode_line(line: str) -> Any:
    """json.loads(line), decoded by orjson (four times faster) whenever that gives the same value.

    orjson turns integers beyond 64 bits into floats and refuses what json accepts (NaN, lone
    surrogates): anything it refuses, and any object whose messages could show such a number, is
    decoded again by json, so values and error messages stay json's.
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    if type(obj) is not dict:
        return json.loads(line)
    for key, value in obj.items():
        if type(value) is float or (type(value) in (list, dict) and key in _NUMBER_KEYS):
            return json.loads(line)
    return obj


def parse_jsonl(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from a JSON Lines file."""
    for number, line in numbered_lines(pieces):
        if line is None:
            yield ParseIssue(number, f"line longer than {MAX_LINE // 1024} KiB; skipped")
            continue
        if not line.strip():
            continue
        try:
            obj = decode_line(line)
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
