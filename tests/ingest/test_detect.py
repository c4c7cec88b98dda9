from __future__ import annotations

import pytest

from service.ingest.detect import detect_format, sniff
from tests.ingest.helpers import fixture


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("listing_small.txt", "listing"),
        ("listing_bom_crlf.txt", "listing"),
        ("listing_latin1.txt", "listing"),
        ("listing_truncated.txt", "listing"),
        ("daily_page_small.txt", "daily_page"),
        ("daily_page_nasty.txt", "daily_page"),
        ("papers.jsonl", "jsonl"),
        ("arxiv_feed.xml", "atom"),
        ("arxiv_feed_truncated.xml", "atom"),
        ("hf_daily_papers.json", "hf_api"),
        ("hf_daily_papers_truncated.json", "hf_api"),
    ],
)
def test_fixture_formats_are_detected(name: str, fmt: str) -> None:
    head = fixture(name).read_bytes().decode("utf-8", errors="replace")
    assert detect_format(head) == fmt


def test_headerless_text_is_read_by_its_shape() -> None:
    assert detect_format("A Title\nAn abstract.\nAnother Title\nAnother abstract.\n") == "listing"
    assert detect_format("A Title\n\nAn abstract.\n\nAnother Title\n\nMore.\n") == "daily_page"


def test_unrecognisable_input_is_none() -> None:
    assert detect_format("") is None
    assert detect_format("   \n\n") is None
    assert detect_format("<html></html>") is None
    assert detect_format("one line only") is None


def test_sniff_gives_back_every_piece() -> None:
    pieces = [f"line {i}\n" for i in range(5000)]
    head, rest = sniff(iter(pieces))
    assert head.startswith("line 0\n") and len(head) <= 16384
    assert list(rest) == pieces
