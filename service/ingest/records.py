"""What a parser hands back: paper records, problems found on the way, and the one error it may raise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# The formats paperboy reads; `paperboy ingest --format` takes one of these names.
FORMATS = ("listing", "daily_page", "jsonl", "atom", "hf_api")


@dataclass(slots=True)
class PaperRecord:
    """One paper as a dump gave it, text already normalised (see normalize.clean_text)."""

    title: str
    abstract: str
    line: int = 0  # where the paper starts in its file (1-based), for error messages
    authors: list[str] = field(default_factory=list)
    author_count: int | None = None
    organization: str | None = None
    published_on: dt.date | None = None
    upvotes: int | None = None
    arxiv_id: str | None = None  # without version: "2401.01234", "hep-th/9901001"
    url: str | None = None
    code_url: str | None = None  # first GitHub repository link
    links: list[str] = field(default_factory=list)  # arXiv and GitHub links, in order of appearance


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A problem in one place of a file; the parser skips that part and goes on."""

    line: int | None
    message: str
    skipped: bool = True  # True: a paper or line was dropped (counts as rejected); False: a warning

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ParseError(ValueError):
    """The input is not in the parser's format at all (nothing could be read).

    This is the only exception a parser raises; every smaller problem is a ParseIssue in its output.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


ParseItem = PaperRecord | ParseIssue
