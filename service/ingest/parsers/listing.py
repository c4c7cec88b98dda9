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
from service.ingest.parsers.text_units import Lookahead, clean_lines, excerpt
from service.ingest.records import PaperRecord, ParseIssue, ParseItem

HEADER_PREFIX = "Get trending papers"
BUTTON = "Subscribe"


def _content_lines(pieces: Iterable[str]) -> Iterator[tuple[int, str] | ParseIssue]:
    """Non-blank lines with the header dropped and the button label cut off the first title."""
    in_header = True
    for item in clean_lines(pieces):
        if isinstance(item, ParseIssue):
            yield item
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
        yield number, text


def parse_listing(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from a listing dump (pieces: the file's text, in any chunking)."""
    lines: Lookahead[tuple[int, str]] = Lookahead(_content_lines(pieces))
    title: tuple[int, str] | None = None
    while (item := lines.next()) is not None:
        if isinstance(item, ParseIssue):
            yield item
            if title is not None:  # unreadable data between a title and its abstract: trust neither
                yield ParseIssue(title[0], f"title followed by unreadable data, skipped: {excerpt(title[1])}")
                title = None
            continue
        number, text = item
        if title is None:
            if looks_like_title(text):
                title = item
            else:
                yield ParseIssue(number, f"abstract with no title, skipped: {excerpt(text)}")
            continue
        if " " not in text:  # a single word is no abstract
            yield ParseIssue(title[0], f"title with no abstract, skipped: {excerpt(title[1])}")
            title = item if looks_like_title(text) else None
            continue
        if looks_like_title(text):
            # A title-like line after a title: a terse abstract, or was the title missing its abstract?
            following = lines.peek()
            if following is not None and not looks_like_title(following[1]):
                yield ParseIssue(title[0], f"title with no abstract, skipped: {excerpt(title[1])}")
                title = item
                continue
        yield finish_record(PaperRecord(title=title[1], abstract=text, line=title[0]))
        title = None
    if title is not None:
        yield ParseIssue(
            title[0], f"file ends after a title with no abstract (truncated?): {excerpt(title[1])}"
        )
