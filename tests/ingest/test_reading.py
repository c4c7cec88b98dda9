from __future__ import annotations

import io

from service.ingest.reading import Decoding, decode_pieces, numbered_lines, read_pieces


def decode(data: bytes, max_piece: int = 1 << 20) -> tuple[str, Decoding]:
    decoding = Decoding()
    text = "".join(decode_pieces(read_pieces(io.BytesIO(data), max_piece), decoding))
    return text, decoding


def test_utf8_bom_is_dropped_and_reported() -> None:
    text, decoding = decode(b"\xef\xbb\xbfTitle\n")
    assert text == "Title\n"
    assert decoding.encoding == "utf-8-sig"


def test_latin1_lines_fall_back_one_line_at_a_time() -> None:
    text, decoding = decode("fine ünïcode\n".encode() + "café latin\n".encode("latin-1") + b"ok\n")
    assert text == "fine ünïcode\ncafé latin\nok\n"
    assert decoding.fallback_lines == [2]


def test_a_character_cut_between_pieces_is_rejoined() -> None:
    text, decoding = decode(("é" * 50).encode(), max_piece=7)
    assert text == "é" * 50
    assert decoding.fallback_lines == []


def test_utf16_is_reported() -> None:
    _, decoding = decode("\ufeffTitle\n".encode("utf-16-le"))
    assert decoding.notes and "UTF-16" in decoding.notes[0]


def test_line_endings_lf_crlf_and_cr_all_count_as_one() -> None:
    lines = list(numbered_lines(["a\r\nb\rc\n", "d\r", "\ne"]))
    assert lines == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]


def test_lines_are_the_same_whatever_the_chunking() -> None:
    text = "one\r\ntwo\n\nthree\rfour"
    expected = list(numbered_lines([text]))
    for size in (1, 2, 3, 5):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert list(numbered_lines(chunks)) == expected


def test_overlong_lines_are_flagged_not_kept() -> None:
    lines = list(numbered_lines(["x" * 10, "y" * 10, "\nshort\n"], max_line=15))
    assert lines == [(1, None), (2, "short")]
