from __future__ import annotations

import pytest

from service.ingest.normalize import (
    clean_text,
    extract_links,
    first_code_url,
    garbage_reason,
    looks_like_title,
    normalize_arxiv_id,
    paper_key,
    title_key,
)
from service.ingest.records import PaperRecord


def test_clean_text_collapses_whitespace_and_composes_unicode() -> None:
    assert clean_text("  A\ttitle \n with\u00a0odd   spacing ") == "A title with odd spacing"
    # NFC composes e + U+0301 into é; dotless i + diaeresis has no precomposed form and stays two.
    assert clean_text("Cafe\u0301 na\u0131\u0308ve") == "Caf\u00e9 na\u0131\u0308ve"
    assert clean_text("zero\u200bwidth and soft\u00adhyphen") == "zerowidth and softhyphen"


def test_clean_text_keeps_wording_and_case() -> None:
    text = "Δ-DiT: A Training-Free Method (v2) — “quoted”"
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2401.01234v2", "2401.01234"),
        ("arXiv:2401.01234", "2401.01234"),
        ("https://arxiv.org/abs/2401.01234v3", "2401.01234"),
        ("http://arxiv.org/pdf/2401.01234v1.pdf", "2401.01234"),
        ("hep-th/9901001v1", "hep-th/9901001"),
        ("math.GT/0309136", "math.gt/0309136"),
        ("not-an-id", None),
        ("1234", None),
    ],
)
def test_arxiv_ids_lose_their_version(value: str, expected: str | None) -> None:
    assert normalize_arxiv_id(value) == expected


def test_links_keep_arxiv_and_github_only_and_trim_punctuation() -> None:
    text = (
        "Code at https://github.com/org/repo. See (https://github.com/org/other) and "
        "https://github.com/x/y{https://github.com/x/y}, https://example.org/page, arXiv:2312.09876v2 "
        "and https://arxiv.org/abs/2401.00001."
    )
    assert extract_links(text) == [
        "https://github.com/org/repo",
        "https://github.com/org/other",
        "https://github.com/x/y",
        "https://arxiv.org/abs/2401.00001",
        "https://arxiv.org/abs/2312.09876",
    ]


def test_code_url_is_the_repository_root() -> None:
    links = ["https://arxiv.org/abs/1", "https://github.com/mindspore-lab/models/tree/master/research/x"]
    assert first_code_url(links) == "https://github.com/mindspore-lab/models"
    assert first_code_url(["https://github.com/orgs/foo"]) is None


def test_title_key_ignores_case_punctuation_and_spacing() -> None:
    assert title_key("Sparse Widgets: for Everyone!") == title_key("sparse  widgets for EVERYONE")
    assert title_key("Café") == title_key("CAFÉ")
    assert title_key("Sparse Widgets") != title_key("Sparse Gadgets")


def test_keys_prefer_the_arxiv_id_and_stay_short() -> None:
    assert paper_key(PaperRecord("T", "A", arxiv_id="2401.01234")) == "arxiv:2401.01234"
    assert paper_key(PaperRecord("Some Title", "A")) == "title:some title"
    long_key = paper_key(PaperRecord("word " * 200, "A"))
    assert len(long_key) <= 300
    assert long_key != paper_key(PaperRecord("word " * 199 + "other", "A"))


def test_garbage_is_recognised_and_prose_is_not() -> None:
    assert garbage_reason("A normal title about Ünïcödé and Δ-DiT") is None
    assert garbage_reason("nul\x00byte") is not None
    assert garbage_reason("\x01\x02\x03\x04 mostly control") is not None
    assert garbage_reason("Ã¤Â§Â¬Â±Ã¿Â¤Â¦Â¨") is not None  # random bytes read as Windows-1252


def test_titles_are_short_phrases_without_a_final_full_stop() -> None:
    assert looks_like_title("Sparse Widgets for Everyone")
    assert not looks_like_title("A one-line abstract.")
    assert not looks_like_title("word " * 80)
