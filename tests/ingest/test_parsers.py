"""Each format, on the hand-written fixtures in tests/fixtures/dumps (nasty ones included)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from service.ingest.parsers import parse
from service.ingest.parsers.daily_page import parse_date, resolve_year
from service.ingest.parsers.jsonl import parse_jsonl
from service.ingest.records import PaperRecord, ParseError
from tests.ingest.helpers import fixture, parse_file

WIDGETS_GITHUB = "https://github.com/example-lab/sparse-widgets"


def test_listing_reads_titles_abstracts_and_links() -> None:
    records, issues, fmt = parse_file(fixture("listing_small.txt"))
    assert fmt == "listing" and issues == []
    assert [r.title for r in records] == [
        "Sparse Widgets for Everyone",  # "Subscribe" cut off the first title
        "Gradient Gardens: Growing Networks One Leaf at a Time",
        "Café Models: Naïve Bayes Revisited",
    ]
    assert [r.line for r in records] == [3, 5, 7]
    first = records[0]
    assert first.abstract.startswith("We study sparse widgets") and first.abstract.endswith("rare inputs.")
    assert first.code_url == WIDGETS_GITHUB
    # An arXiv reference inside an abstract is a link, not the paper's own id.
    assert first.links == [WIDGETS_GITHUB, "https://arxiv.org/abs/2312.09876"]
    assert first.arxiv_id is None
    assert records[2].links == ["https://github.com/cafe-models/nb"]  # project page left out


@pytest.mark.parametrize("name", ["listing_bom_crlf.txt", "listing_latin1.txt"])
def test_listing_in_other_encodings_and_line_endings_reads_the_same(name: str) -> None:
    expected, _, _ = parse_file(fixture("listing_small.txt"))
    records, issues, fmt = parse_file(fixture(name))
    assert fmt == "listing" and issues == []
    assert records == expected


def test_listing_missing_lines_cost_one_paper_each() -> None:
    records, issues, _ = parse_file(fixture("listing_missing_lines.txt"))
    assert [r.title for r in records] == [
        "Orphan Detection in Streams",
        "Quiet Queues: Scheduling Without Starvation",
        "Short Abstract Paper",
    ]
    assert records[2].abstract == "A one-line abstract."
    assert [(i.line, i.message.split(",")[0]) for i in issues] == [
        (5, "abstract with no title"),
        (6, "title with no abstract"),
    ]


def test_truncated_listing_keeps_the_complete_papers() -> None:
    records, issues, _ = parse_file(fixture("listing_truncated.txt"))
    assert [r.title for r in records] == ["Complete Paper Before the Cut"]
    assert len(issues) == 1 and issues[0].line == 5 and "truncated" in issues[0].message


def test_daily_page_metadata_dates_and_upvotes() -> None:
    records, issues, fmt = parse_file(fixture("daily_page_small.txt"))
    assert fmt == "daily_page" and issues == []
    widgets, lanterns, bare, winter = records
    assert (widgets.author_count, widgets.published_on, widgets.upvotes) == (4, dt.date(2024, 1, 9), 12)
    assert widgets.code_url == WIDGETS_GITHUB
    # Organisation line "example-org Example Research Lab": handle, then display name.
    assert lanterns.organization == "Example Research Lab" and lanterns.author_count is None
    # Page dated "Mar 16", read on 2026-11-23: the page is 2026-03-16, "Mar 5" is 2026-03-05 ...
    assert (lanterns.published_on, lanterns.upvotes) == (dt.date(2026, 3, 5), 7)
    # ... and "Dec 2" cannot be after the page date, so it is the December before.
    assert winter.published_on == dt.date(2025, 12, 2) and winter.author_count == 1
    assert (bare.title, bare.published_on, bare.author_count, bare.upvotes) == (
        "A Paper Without Any Metadata",
        None,
        None,
        None,
    )
    assert [r.line for r in records] == [13, 21, 29, 33]


def test_daily_page_nasty_blocks_are_reported_with_lines() -> None:
    records, issues, _ = parse_file(fixture("daily_page_nasty.txt"))
    assert [r.title for r in records] == ["Tabs and spaces in a title"]
    assert records[0].author_count == 2
    assert "  " not in records[0].abstract and "\t" not in records[0].abstract
    assert "\u00a0" not in records[0].abstract
    assert [(i.line, i.skipped) for i in issues] == [
        (7, True),
        (11, True),
        (19, False),
        (20, False),
        (22, True),
    ]
    assert "metadata block with no paper" in issues[0].message
    assert "abstract with no title" in issues[1].message
    assert "invalid date 'Feb 30'" in issues[3].message
    assert "title with no abstract" in issues[4].message


def test_page_without_a_date_reads_year_less_dates_against_today() -> None:
    page = "Daily Papers\n\nA Title\n\nAn abstract sentence. Another one.\n\n  • 2 authors\n·\nDec 25\n"
    items = list(parse("daily_page", [page], today=dt.date(2026, 11, 23)))
    assert "no page date" in str(items[0])
    assert isinstance(items[1], PaperRecord) and items[1].published_on == dt.date(2025, 12, 25)


def test_year_resolution_rules() -> None:
    page = dt.date(2026, 3, 16)
    assert resolve_year(3, 16, page) == dt.date(2026, 3, 16)
    assert resolve_year(3, 17, page) == dt.date(2025, 3, 17)
    assert resolve_year(2, 29, page) == dt.date(2024, 2, 29)  # latest leap year not after the page
    assert parse_date("Mar 11 2", page) == (dt.date(2026, 3, 11), 2)
    assert parse_date("Nov 28, 2017", page) == (dt.date(2017, 11, 28), None)
    assert parse_date("May 14, 2025 5", page) == (dt.date(2025, 5, 14), 5)
    assert parse_date("Foo 12", page) is None


def test_jsonl_keeps_good_lines_and_names_bad_ones() -> None:
    records, issues, fmt = parse_file(fixture("papers.jsonl"))
    assert fmt == "jsonl"
    assert [r.title for r in records] == ["Sparse Widgets for Everyone", "Tiny Tables", "Bad Upvotes"]
    widgets, tables, bad = records
    assert widgets.arxiv_id == "2401.01234" and widgets.upvotes == 30 and widgets.author_count == 2
    assert tables.organization == "Table Lab" and tables.published_on == dt.date(2023, 6, 1)
    assert tables.code_url == "https://github.com/tiny/tables"
    assert bad.upvotes is None and bad.arxiv_id is None
    assert [(i.line, i.skipped) for i in issues] == [(3, True), (5, True), (6, True), (7, False), (7, False)]
    assert "not valid JSON" in issues[0].message and "missing abstract" in issues[2].message


def test_jsonl_round_trips_an_exported_object() -> None:
    obj = {
        "title": "T",
        "abstract": "A.",
        "authors": ["X"],
        "author_count": 1,
        "organization": "O",
        "published_on": "2024-01-02",
        "upvotes": 3,
        "arxiv_id": "2401.01234",
        "url": "https://arxiv.org/abs/2401.01234",
        "code_url": "https://github.com/a/b",
        "links": ["https://github.com/a/b"],
        "source": "s",
        "first_seen_at": "2026-11-23T12:00:00+00:00",
    }
    (record,) = list(parse_jsonl(io.StringIO(json.dumps(obj) + "\n")))
    assert record == PaperRecord(
        title="T",
        abstract="A.",
        line=1,
        authors=["X"],
        author_count=1,
        organization="O",
        published_on=dt.date(2024, 1, 2),
        upvotes=3,
        arxiv_id="2401.01234",
        url="https://arxiv.org/abs/2401.01234",
        code_url="https://github.com/a/b",
        links=["https://github.com/a/b"],
    )


def test_atom_feed_entries() -> None:
    records, issues, fmt = parse_file(fixture("arxiv_feed.xml"))
    assert fmt == "atom"
    widgets, old = records
    assert widgets.title == "Sparse Widgets for Everyone"  # the line break inside the title is a space
    assert widgets.arxiv_id == "2401.01234" and widgets.url == "https://arxiv.org/abs/2401.01234"
    assert widgets.authors == ["Ada Example", "Bo Sample"] and widgets.organization == "Widget University"
    assert widgets.published_on == dt.date(2024, 1, 3)
    assert widgets.code_url == WIDGETS_GITHUB  # from <arxiv:comment>
    assert old.arxiv_id == "hep-th/9901001"
    assert [(i.line, i.skipped) for i in issues] == [(31, True), (36, True)]
    assert "arXiv API reported an error" in issues[0].message


def test_truncated_atom_feed_keeps_complete_entries() -> None:
    records, issues, _ = parse_file(fixture("arxiv_feed_truncated.xml"))
    assert [r.arxiv_id for r in records] == ["2401.01234"]
    assert len(issues) == 1 and "truncated" in issues[0].message and issues[0].line == 27


def test_atom_parser_refuses_what_is_not_atom() -> None:
    with pytest.raises(ParseError, match="not an XML document"):
        list(parse("atom", ["just some text\n"]))
    with pytest.raises(ParseError, match="not an Atom <feed>"):
        list(parse("atom", ["<html><body/></html>"]))


def test_hf_api_items() -> None:
    records, issues, fmt = parse_file(fixture("hf_daily_papers.json"))
    assert fmt == "hf_api"
    widgets, lanterns, text_votes = records
    assert widgets.arxiv_id == "2401.01234" and widgets.upvotes == 21
    assert widgets.authors == ["Ada Example", "Bo Sample"]  # hidden authors are left out
    assert widgets.organization == "Example Lab" and widgets.code_url == WIDGETS_GITHUB
    assert lanterns.arxiv_id == "2403.04567" and lanterns.published_on == dt.date(2024, 3, 7)
    assert text_votes.upvotes is None
    assert [(i.line, i.skipped) for i in issues] == [(27, False), (28, True), (29, True)]


def test_hf_api_in_one_long_line_or_tiny_chunks_reads_the_same() -> None:
    expected, _, _ = parse_file(fixture("hf_daily_papers.json"))
    data = json.loads(fixture("hf_daily_papers.json").read_text())
    one_line = json.dumps(data)
    for chunks in ([one_line], [one_line[i : i + 5] for i in range(0, len(one_line), 5)]):
        records = [r for r in parse("hf_api", chunks) if isinstance(r, PaperRecord)]
        assert [(r.title, r.arxiv_id, r.upvotes) for r in records] == [
            (r.title, r.arxiv_id, r.upvotes) for r in expected
        ]


def test_truncated_hf_api_keeps_complete_items() -> None:
    records, issues, _ = parse_file(fixture("hf_daily_papers_truncated.json"))
    assert [r.arxiv_id for r in records] == ["2401.01234"]
    assert len(issues) == 1 and "truncated" in issues[0].message and issues[0].line == 22


def test_hf_api_refuses_what_is_not_an_array() -> None:
    with pytest.raises(ParseError, match="expected a JSON array"):
        list(parse("hf_api", ['{"paper": {}}']))
