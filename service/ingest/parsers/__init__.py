"""One pure parser per dump format: pieces of text in, PaperRecords and ParseIssues out.

Parsers never touch files or the database. They raise only ParseError, and only when the input is
not in their format at all; anything smaller is a ParseIssue in the stream and parsing goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator

from service.ingest.parsers.atom import parse_atom
from service.ingest.parsers.daily_page import parse_daily_page
from service.ingest.parsers.hf_api import parse_hf_api
from service.ingest.parsers.jsonl import parse_jsonl
from service.ingest.parsers.listing import parse_listing
from service.ingest.records import FORMATS, ParseItem

Parser = Callable[[Iterable[str]], Iterator[ParseItem]]

PARSERS: dict[str, Parser] = {
    "listing": parse_listing,
    "jsonl": parse_jsonl,
    "atom": parse_atom,
    "hf_api": parse_hf_api,
}
assert set(PARSERS) | {"daily_page"} == set(FORMATS)


def parse(fmt: str, pieces: Iterable[str], today: dt.date | None = None) -> Iterator[ParseItem]:
    """Parse `pieces` as `fmt` (one of FORMATS); `today` resolves year-less dates on daily pages."""
    if fmt == "daily_page":
        return parse_daily_page(pieces, today=today)
    if fmt not in PARSERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return PARSERS[fmt](pieces)


__all__ = ["PARSERS", "parse"]
