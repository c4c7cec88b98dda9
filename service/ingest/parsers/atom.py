"""The arXiv API's Atom feed (export.arxiv.org/api/query), read entry by entry.

An XMLPullParser is fed the file piece by piece and each <entry> is dropped once read, so memory
stays flat however long the feed. Expat does not fetch external entities, and its built-in limits
stop entity-expansion bombs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from xml.etree import ElementTree as ET

from service.ingest.normalize import (
    arxiv_abs_url,
    clean_text,
    extract_links,
    finish_record,
    normalize_arxiv_id,
)
from service.ingest.parsers.fields import FieldProblem, date_field, text_field
from service.ingest.records import PaperRecord, ParseError, ParseIssue, ParseItem

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"


_ID, _TITLE, _SUMMARY, _PUBLISHED = f"{ATOM}id", f"{ATOM}title", f"{ATOM}summary", f"{ATOM}published"
_FEED, _ENTRY = f"{ATOM}feed", f"{ATOM}entry"
_AUTHOR, _NAME, _AFFILIATION, _COMMENT = (
    f"{ATOM}author",
    f"{ATOM}name",
    f"{ARXIV}affiliation",
    f"{ARXIV}comment",
)


def record_from_entry(entry: ET.Element, line: int) -> tuple[PaperRecord, list[str]]:
    """A record from one <entry>; FieldProblem when its title or summary is unusable."""
    fields: dict[str, str] = {}
    authors: list[str] = []
    organization: str | None = None
    for child in entry:  # one pass over the children, instead of a find() per field
        tag = child.tag
        if tag == _AUTHOR:
            for part in child:
                if part.tag == _NAME and part.text:
                    authors.append(clean_text(part.text))
                elif part.tag == _AFFILIATION and part.text and organization is None:
                    organization = clean_text(part.text)[:300] or None
        elif child.text and tag not in fields:
            fields[tag] = child.text
    entry_id = fields.get(_ID, "")
    if "/api/errors" in entry_id:
        raise FieldProblem(f"the arXiv API reported an error: {clean_text(fields.get(_SUMMARY, ''))}")
    title = text_field("title", fields.get(_TITLE), required=True)
    abstract = text_field("summary", fields.get(_SUMMARY), required=True)
    assert title is not None and abstract is not None
    record = PaperRecord(title=title, abstract=abstract, line=line, organization=organization)
    record.authors = [name for name in authors if name]
    record.author_count = len(record.authors) or None
    dropped: list[str] = []
    record.arxiv_id = normalize_arxiv_id(entry_id) if entry_id else None
    if entry_id and record.arxiv_id is None:
        dropped.append(f"entry id {entry_id[:60]!r} is not an arXiv id")
    try:
        record.published_on = date_field("published", fields.get(_PUBLISHED))
    except FieldProblem as problem:
        dropped.append(str(problem))
    if record.arxiv_id:
        record.url = arxiv_abs_url(record.arxiv_id)
    # The abstract and the author's comment ("Code: https://github.com/...") both carry links.
    comment = fields.get(_COMMENT)
    record.links = extract_links(f"{abstract} {comment}" if comment else abstract)
    return finish_record(record), dropped


def _lines(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces cut at line ends, so that events can be given the line they happened on."""
    for piece in pieces:
        newlines = piece.count("\n")
        if newlines == 0 or (newlines == 1 and piece.endswith("\n")):
            yield piece
            continue
        parts = piece.split("\n")
        for part in parts[:-1]:
            yield part + "\n"
        if parts[-1]:
            yield parts[-1]


Event = tuple[str, ET.Element]


def _event_reader() -> tuple[Callable[[str], None], Callable[[], object], list[Event]]:
    """(feed, close, events): an XMLParser that appends its start/end events to a plain list.

    This is what XMLPullParser does inside, with the same private _setevents; reading that list in a
    for loop instead of through XMLPullParser.read_events, a generator step per event, saves about a
    quarter of the parse. A Python without _setevents gets the pull parser's events copied over.
    """
    events: list[Event] = []
    if hasattr(ET.XMLParser, "_setevents"):
        parser = ET.XMLParser(target=ET.TreeBuilder())
        parser._setevents(events, ("start", "end"))
        return parser.feed, parser.close, events
    pull = ET.XMLPullParser(events=("start", "end"))

    def feed(piece: str) -> None:
        pull.feed(piece)
        for event in pull.read_events():  # raises a parse error after the events before it
            events.append(event)

    return feed, pull.close, events


def parse_atom(pieces: Iterable[str]) -> Iterator[ParseItem]:
    """Paper records and issues from an arXiv API Atom feed."""
    feed, close, events = _event_reader()
    root: ET.Element | None = None
    line = 1
    entry_line = 1
    try:
        for piece in _lines(pieces):
            error: ET.ParseError | None = None
            try:
                feed(piece)
            except ET.ParseError as exc:  # the events before the error are read first, as pulled ones
                error = exc
            for event, element in events:
                if root is None:
                    root = element
                    if element.tag != _FEED:
                        raise ParseError(f"XML root is <{element.tag}>, not an Atom <feed>", line=line)
                if element.tag != _ENTRY:
                    continue
                if event == "start":
                    entry_line = line
                    continue
                try:
                    record, dropped = record_from_entry(element, entry_line)
                except FieldProblem as problem:
                    yield ParseIssue(entry_line, f"{problem}; entry skipped")
                else:
                    for message in dropped:
                        yield ParseIssue(entry_line, f"{message}; field ignored", skipped=False)
                    yield record
                root.clear()  # entries already read are not needed again
            events.clear()
            if error is not None:
                raise error
            line += piece.count("\n")
        close()
    except ET.ParseError as exc:
        where = exc.position[0]
        if root is None:
            raise ParseError(f"not an XML document ({exc})", line=where) from None
        yield ParseIssue(where, f"XML is malformed or truncated ({exc}); the rest is not read")
        return
    if root is None:
        raise ParseError("empty document: no XML found")
