"""Property-based: whatever text arrives, parsers yield records and issues or raise ParseError."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.ingest.detect import detect_format
from service.ingest.parsers import parse
from service.ingest.reading import decode_pieces
from service.ingest.records import FORMATS, PaperRecord, ParseError, ParseIssue

TODAY = dt.date(2026, 11, 23)

# Text with the characters that matter to the parsers: separators, bullets, brackets, quotes, dates.
ALPHABET = st.sampled_from([*'ab Zé.:,·•\n\r\t"{}[]<>/0123456789-', "Mar ", "Subscribe", "\x00", "\ufeff"])
nasty_text = st.one_of(st.text(), st.lists(ALPHABET, max_size=200).map("".join))


def chunked(text: str, sizes: list[int]) -> list[str]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(text[start : start + size])
        start += size
    pieces.append(text[start:])
    return pieces


def check(fmt: str, pieces: list[str]) -> list[PaperRecord]:
    records = []
    try:
        for item in parse(fmt, pieces, today=TODAY):
            assert isinstance(item, PaperRecord | ParseIssue)
            if isinstance(item, PaperRecord):
                assert item.title and item.abstract
                assert item.title == item.title.strip() and "\n" not in item.title + item.abstract
                assert "\x00" not in item.title + item.abstract
                records.append(item)
            else:
                assert item.message
    except ParseError as exc:
        assert exc.message
    return records


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=nasty_text, sizes=st.lists(st.integers(1, 40), max_size=8))
def test_parsers_survive_any_text(text: str, sizes: list[int]) -> None:
    for fmt in FORMATS:
        check(fmt, chunked(text, sizes))


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_decode_and_parse(data: bytes) -> None:
    lines = data.split(b"\n")
    raw = [line + b"\n" for line in lines[:-1]] + [lines[-1]]
    text = list(decode_pieces(raw))
    for fmt in FORMATS:
        check(fmt, text)
    detect_format("".join(text))


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "paper",
                            "title",
                            "summary",
                            "id",
                            "upvotes",
                            "authors",
                            "publishedAt",
                            "organization",
                            "githubRepo",
                            "abstract",
                            "links",
                            "arxiv_id",
                            "published_on",
                        ]
                    ),
                    children,
                    max_size=5,
                )
            ),
            max_leaves=12,
        ),
        max_size=5,
    )
)
def test_json_formats_survive_any_json_values(items: list[object]) -> None:
    check("hf_api", [json.dumps(items)])
    check("jsonl", ["\n".join(json.dumps(item) for item in items)])


titles = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x2FF), min_size=1, max_size=30
).map(lambda s: "T" + s)
abstracts = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Zs"), max_codepoint=0x2FF), max_size=200
).map(lambda s: "We show that " + s + ".")


@settings(max_examples=100, deadline=None)
@given(
    papers=st.lists(st.tuples(titles, abstracts), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 50), max_size=10),
)
def test_well_formed_listings_read_back_exactly_in_any_chunking(
    papers: list[tuple[str, str]], sizes: list[int]
) -> None:
    body = "".join(f"{title}\n{abstract}\n" for title, abstract in papers)
    text = "Get trending papers in your email inbox!\nSubscribe" + body
    records = check("listing", chunked(text, sizes))
    assert [(r.title, r.abstract) for r in records] == [
        (" ".join(t.split()), " ".join(a.split())) for t, a in papers
    ]
