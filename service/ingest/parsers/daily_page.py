"""The daily-papers page format: a page header, then blank-line separated blocks per paper.

    new / Get trending papers... / Subscribe / Daily Papers / byAK and the research community
    Mar 16                                  <- the page date, usually without a year

    Paper Title

    Abstract ...

      • 3 authors                           <- or an organisation line: "deepseek-ai DeepSeek"
    ·
    Nov 28, 2017 12                         <- publication date, optional year, optional upvotes

The metadata block is optional. Dates without a year are resolved to the latest such date that is
not after the reference: paper dates against the page date, the page date against `today` (the
ingest date). So on a page dated Mar 16 (read in Nov 2026: 2026-03-16), "Mar 5" is 2026-03-05 and
"Nov 3" would be 2025-11-03 -- a paper cannot be published after the page listing it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from service.ingest.normalize import finish_record, looks_like_title
from service.ingest.parsers.text_units import Lookahead, clean_lines, excerpt
from service.ingest.records import PaperRecord, ParseIssue, ParseItem

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_DATE = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2})(?:, ?(\d{4}))?(?: (\d{1,7}))?$")
_AUTHORS = re.compile(r"^•\s*(\d+)\s+authors?$")
_HEADER = ("new", "Subscribe", "Daily Papers")
SEPARATOR = "·"


@dataclass(slots=True)
class Block:
    line: int
    lines: list[str]

    @property
    def is_metadata(self) -> bool:
        return SEPARATOR in self.lines or self.lines[0].startswith("•")

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _blocks(pieces: Iterable[str]) -> Iterator[Block | ParseIssue]:
    current: Block | None = None
    for item in clean_lines(pieces):
        if isinstance(item, ParseIssue):
            yield item
            continue
        number, text = item
        if text:
            if current is None:
                current = Block(number, [text])
            else:
                current.lines.append(text)
        elif current is not None:
            yield current
            current = None
    if current is not None:
        yield current


def resolve_year(month: int, day: int, reference: dt.date) -> dt.date:
    """The latest month/day that is not after `reference` (Feb 29 goes back to a leap year)."""
    year = reference.year if (month, day) <= (reference.month, reference.day) else reference.year - 1
    for candidate in range(year, year - 8, -1):
        try:
            return dt.date(candidate, month, day)
        except ValueError:
            continue
    raise ValueError(f"no valid date for month {month} day {day}")


def parse_date(text: str, reference: dt.date) -> tuple[dt.date, int | None] | None:
    """'Nov 28, 2017' / 'Mar 5' / 'Mar 11 2' (2 upvotes) -> (date, upvotes); None if not a date."""
    match = _DATE.match(text)
    if not match:
        return None
    month = MONTHS.get(match.group(1)[:3].lower())
    if month is None:
        return None
    day = int(match.group(2))
    votes = int(match.group(4)) if match.group(4) else None
    try:
        if match.group(3):
            return dt.date(int(match.group(3)), month, day), votes
        return resolve_year(month, day, reference), votes
    except ValueError:
        return None


def _apply_metadata(record: PaperRecord, block: Block, page_date: dt.date) -> Iterator[ParseIssue]:
    seen_separator = False
    for offset, text in enumerate(block.lines):
        number = block.line + offset
        if text == SEPARATOR:
            seen_separator = True
        elif (authors := _AUTHORS.match(text)) is not None:
            record.author_count = int(authors.group(1))
        elif text.startswith("•"):
            names = [n.strip() for n in text[1:].split(",") if n.strip()]
            record.authors, record.author_count = names, len(names)
        elif (date := parse_date(text, page_date)) is not None:
            record.published_on, record.upvotes = date
        elif _DATE.match(text):
            yield ParseIssue(number, f"invalid date {excerpt(text)}; ignored", skipped=False)
        elif text.isdigit():
            record.upvotes = int(text)
        elif not seen_separator and record.organization is None:
            # "deepseek-ai DeepSeek": the organisation's handle, then its display name.
            handle, _, name = text.partition(" ")
            record.organization = name or handle
        else:
            yield ParseIssue(number, f"unrecognised metadata line {excerpt(text)}; ignored", skipped=False)


def _page_date(blocks: Lookahead[Block], today: dt.date) -> Iterator[ParseIssue | dt.date]:
    """Consume the page header; yields issues, then the page date (today if the page has none)."""
    while (block := blocks.peek()) is not None:
        first = block.lines[0]
        date = parse_date(first, today) if len(block.lines) == 1 else None
        if date is None and not (first in _HEADER or first.startswith(("Get trending papers", "byAK"))):
            break
        item = blocks.next()
        while isinstance(item, ParseIssue):  # issues found before the block we peeked at
            yield item
            item = blocks.next()
        if date is not None:
            yield date[0]
            return
    message = f"no page date in the header; dates without a year are read against {today}"
    yield ParseIssue(None, message, skipped=False)
    yield today


def parse_daily_page(pieces: Iterable[str], today: dt.date | None = None) -> Iterator[ParseItem]:
    """Paper records and issues from a daily-papers page (today: the ingest date, default UTC now)."""
    today = today or dt.datetime.now(dt.UTC).date()
    blocks: Lookahead[Block] = Lookahead(_blocks(pieces))
    page_date = today
    for item in _page_date(blocks, today):
        if isinstance(item, ParseIssue):
            yield item
        else:
            page_date = item
    title: Block | None = None
    paper: PaperRecord | None = None  # title and abstract seen; metadata may follow
    while (block := blocks.next()) is not None:
        if isinstance(block, ParseIssue):
            yield block
            if title is not None:  # unreadable data between a title and its abstract: trust neither
                yield ParseIssue(
                    title.line, f"title followed by unreadable data, skipped: {excerpt(title.text)}"
                )
                title = None
            continue
        if block.is_metadata:
            if paper is not None:
                yield from _apply_metadata(paper, block, page_date)
                yield finish_record(paper)
                paper = None
            elif title is not None:
                yield ParseIssue(title.line, f"title with no abstract, skipped: {excerpt(title.text)}")
                title = None
            else:
                yield ParseIssue(block.line, "metadata block with no paper before it; skipped")
            continue
        if paper is not None:
            yield finish_record(paper)
            paper = None
        text = block.text
        if title is None:
            if looks_like_title(text):
                title = block
            else:
                yield ParseIssue(block.line, f"abstract with no title, skipped: {excerpt(text)}")
            continue
        if " " not in text:  # a single word is no abstract
            yield ParseIssue(title.line, f"title with no abstract, skipped: {excerpt(title.text)}")
            title = block if looks_like_title(text) else None
            continue
        if looks_like_title(text):
            # A terse abstract, or a title whose abstract is missing? The next block tells.
            following = blocks.peek()
            if following is not None and not following.is_metadata and not looks_like_title(following.text):
                yield ParseIssue(title.line, f"title with no abstract, skipped: {excerpt(title.text)}")
                title = block
                continue
        paper = PaperRecord(title=title.text, abstract=text, line=title.line)
        title = None
    if paper is not None:
        yield finish_record(paper)
    if title is not None:
        yield ParseIssue(
            title.line, f"file ends after a title with no abstract (truncated?): {excerpt(title.text)}"
        )
