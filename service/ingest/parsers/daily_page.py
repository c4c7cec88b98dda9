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

from service.ingest.normalize import checked_text, finish_record, looks_like_title
from service.ingest.parsers.text_units import excerpt
from service.ingest.reading import MAX_LINE, line_batches
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
    """Blank-line separated blocks of cleaned lines; unreadable lines become issues."""
    current: Block | None = None
    short_lines: dict[str, tuple[str | None, str | None]] = {}
    for number, lines in line_batches(pieces):
        for raw in lines:
            if raw is None:
                yield ParseIssue(
                    number, f"line longer than {MAX_LINE // 1024} KiB is not part of a paper; skipped"
                )
            elif not raw or raw.isspace():
                if current is not None:
                    yield current
                    current = None
            else:
                if len(raw) <= 40:
                    if raw.isascii() and raw.isprintable() and "  " not in raw and raw[0] != " " != raw[-1]:
                        text, reason = raw, None  # what checked_text gives a clean ASCII line
                    # Metadata lines ("·", "  • 4 authors", "Mar 5") repeat all through a page: check
                    # each once.
                    elif (checked := short_lines.get(raw)) is not None:
                        text, reason = checked
                    else:
                        checked = checked_text(raw)
                        if len(short_lines) < 4096:
                            short_lines[raw] = checked
                        text, reason = checked
                else:
                    text, reason = checked_text(raw)
                if text is None:
                    yield ParseIssue(number, f"{reason}; line skipped")
                elif current is None:
                    current = Block(number, [text])
                else:
                    current.lines.append(text)
            number += 1
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
    month_name, day_text, year, upvotes = match.groups()
    month = MONTHS.get(month_name[:3].lower())
    if month is None:
        return None
    day = int(day_text)
    votes = int(upvotes) if upvotes else None
    try:
        if year:
            return dt.date(int(year), month, day), votes
        return resolve_year(month, day, reference), votes
    except ValueError:
        return None


def _apply_metadata(record: PaperRecord, block: Block, page_date: dt.date) -> list[ParseIssue]:
    """Fill `record` from a metadata block; the lines that could not be used, as warnings.

    A list rather than a generator: most blocks have no issue, and a generator per paper costs.
    """
    issues: list[ParseIssue] = []
    seen_separator = False
    for offset, text in enumerate(block.lines):
        number = block.line + offset
        if text == SEPARATOR:
            seen_separator = True
        elif text.startswith("•"):
            if (authors := _AUTHORS.match(text)) is not None:  # the pattern starts with "•" too
                record.author_count = int(authors.group(1))
            else:
                names = [n.strip() for n in text[1:].split(",") if n.strip()]
                record.authors, record.author_count = names, len(names)
        elif (date := parse_date(text, page_date)) is not None:
            record.published_on, record.upvotes = date
        elif _DATE.match(text):
            issues.append(ParseIssue(number, f"invalid date {excerpt(text)}; ignored", skipped=False))
        elif text.isdigit():
            record.upvotes = int(text)
        elif not seen_separator and record.organization is None:
            # "deepseek-ai DeepSeek": the organisation's handle, then its display name.
            handle, _, name = text.partition(" ")
            record.organization = name or handle
        else:
            message = f"unrecognised metadata line {excerpt(text)}; ignored"
            issues.append(ParseIssue(number, message, skipped=False))
    return issues


def _is_header(block: Block) -> bool:
    first = block.lines[0]
    return first in _HEADER or first.startswith(("Get trending papers", "byAK"))


def parse_daily_page(pieces: Iterable[str], today: dt.date | None = None) -> Iterator[ParseItem]:
    """Paper records and issues from a daily-papers page (today: the ingest date, default UTC now)."""
    today = today or dt.datetime.now(dt.UTC).date()
    page_date = today
    in_header = True
    title: Block | None = None  # waiting for its abstract
    maybe: Block | None = None  # title-like block after `title`: terse abstract or the next title?
    paper: PaperRecord | None = None  # title and abstract seen; a metadata block may follow

    def skip_title(block: Block, why: str) -> ParseIssue:
        return ParseIssue(block.line, f"{why}, skipped: {excerpt(block.text)}")

    for block in _blocks(pieces):
        if isinstance(block, ParseIssue):
            yield block
            if paper is not None:
                yield finish_record(paper)
            elif maybe is not None and title is not None:
                yield finish_record(PaperRecord(title=title.text, abstract=maybe.text, line=title.line))
            elif title is not None:  # unreadable data between a title and its abstract: trust neither
                yield skip_title(title, "title followed by unreadable data")
            title = maybe = paper = None
            continue
        if in_header:
            if len(block.lines) == 1 and (date := parse_date(block.lines[0], today)) is not None:
                page_date, in_header = date[0], False
                continue
            if _is_header(block):
                continue
            in_header = False
            message = f"no page date in the header; dates without a year are read against {today}"
            yield ParseIssue(None, message, skipped=False)
        lines = block.lines  # Block.is_metadata, inline: this runs for every block of the page
        is_metadata = SEPARATOR in lines or lines[0].startswith("•")
        if maybe is not None and title is not None:
            text = block.text
            if is_metadata or looks_like_title(text):  # `maybe` was the terse abstract
                paper = PaperRecord(title=title.text, abstract=maybe.text, line=title.line)
                title = maybe = None
            else:  # `maybe` was the next title, and this is its abstract
                yield skip_title(title, "title with no abstract")
                paper = PaperRecord(title=maybe.text, abstract=text, line=maybe.line)
                title = maybe = None
                continue
        if is_metadata:
            if paper is not None:
                issues = _apply_metadata(paper, block, page_date)
                if issues:
                    yield from issues
                yield finish_record(paper)
                paper = None
            elif title is not None:
                yield skip_title(title, "title with no abstract")
                title = None
            else:
                yield ParseIssue(block.line, "metadata block with no paper before it; skipped")
            continue
        if paper is not None:
            yield finish_record(paper)
            paper = None
        text = block.text
        is_title = looks_like_title(text)
        if title is None:
            if is_title:
                title = block
            else:
                yield ParseIssue(block.line, f"abstract with no title, skipped: {excerpt(text)}")
        elif " " not in text:  # a single word is no abstract
            yield skip_title(title, "title with no abstract")
            title = block if is_title else None
        elif is_title:
            maybe = block
        else:
            paper = PaperRecord(title=title.text, abstract=text, line=title.line)
            title = None
    if maybe is not None and title is not None:
        paper = PaperRecord(title=title.text, abstract=maybe.text, line=title.line)
        title = None
    if paper is not None:
        yield finish_record(paper)
    if title is not None:
        yield skip_title(title, "file ends after a title with no abstract (truncated?)")
