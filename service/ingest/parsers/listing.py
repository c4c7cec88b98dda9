"""The listing format: a newsletter header, then one title line and one abstract line per paper.

    Get trending papers in your email inbox once a day!
    Get trending papers in your email inbox!
    SubscribeFirst Paper Title          <- the button label is glued to the first title
    First abstract ...
    Second Paper Title
    ...

Lines are told apart by shape as well as by position (titles are short phrases without a final full
stop; abstracts are sentences), so one missing line costs one paper, not every paper after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from service.ingest.normalize import finish_record, looks_like_title
from service.ingest.parsers.text_units import clean_lines, excerpt
from service.ingest.records import PaperRecord, ParseIssue, ParseItem

HEADER_PREFIX = "Get trending papers"
BUTTON = "Subscribe"


def parse_listing(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from a listing dump (pieces: the file's text, in any chunking)."""
    title: tuple[int, str] | None = None  # waiting for its abstract
    # A title-like line right after `title`: its terse abstract, or the next title (when `title` lost
    # its abstract)? The line after it decides.
    maybe: tuple[int, str] | None = None
    in_header = True
    for item in clean_lines(pieces):
        if isinstance(item, ParseIssue):
            yield item
            if maybe is not None and title is not None:
                yield finish_record(PaperRecord(title=title[1], abstract=maybe[1], line=title[0]))
            elif title is not None:  # unreadable data between a title and its abstract: trust neither
                yield ParseIssue(title[0], f"title followed by unreadable data, skipped: {excerpt(title[1])}")
            title = maybe = None
            continue
        number, text = item
        if not text:
            continue
        if in_header:
            if text.startswith(HEADER_PREFIX) or text == BUTTON:
                continue
            in_header = False
            if text.startswith(BUTTON) and len(text) > len(BUTTON):
                text = text[len(BUTTON) :].lstrip()
                item = (number, text)
        is_title = looks_like_title(text)
        if maybe is not None:
            assert title is not None
            if is_title:  # `maybe` was the terse abstract
                yield finish_record(PaperRecord(title=title[1], abstract=maybe[1], line=title[0]))
                title, maybe = item, None
            else:  # `maybe` was the next title and this is its abstract
                yield ParseIssue(title[0], f"title with no abstract, skipped: {excerpt(title[1])}")
                yield finish_record(PaperRecord(title=maybe[1], abstract=text, line=maybe[0]))
                title = maybe = None
            continue
        if title is None:
            if is_title:
                title = item
            else:
                yield ParseIssue(number, f"abstract with no title, skipped: {excerpt(text)}")
            continue
        if " " not in text:  # a single word is no abstract
            yield ParseIssue(title[0], f"title with no abstract, skipped: {excerpt(title[1])}")
            title = item if is_title else None
        elif is_title:
            maybe = item
        else:
            yield finish_record(PaperRecord(title=title[1], abstract=text, line=title[0]))
            title = None
    if maybe is not None and title is not None:
        yield finish_record(PaperRecord(title=title[1], abstract=maybe[1], line=title[0]))
    elif title is not None:
        yield ParseIssue(
            title[0], f"file ends after a title with no abstract (truncated?): {excerpt(title[1])}"
        )
