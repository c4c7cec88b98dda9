"""Which format a dump is in, from its first few KiB; and whether it is text at all."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain

SNIFF_CHARS = 16384
BINARY_SNIFF_BYTES = 1024  # a dump starts with text; junk further in is the parsers' business, line by line

# Formats people hand over by mistake, by their leading bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"),
    (b"\x1f\x8b", "a gzip file: unpack it first"),
    (b"\xfd7zXZ\x00", "an xz file: unpack it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "a program"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text is full of NULs; reading notes it instead
# C0 controls other than tab, LF, FF, CR and ESC, and DEL: text has next to none, random bytes ~11%.
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 27), *range(28, 32), 127])


def binary_reason(head: bytes) -> str | None:
    """Why a file starting with `head` (its first BINARY_SNIFF_BYTES) is not text, or None if it is."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"the file is {what}, not a paper dump"
    if not head or head.startswith(_UTF16_BOMS):
        return None
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if b"\x00" in head or controls * 50 > len(head):  # more than 2%
        return f"the file is binary ({controls} control bytes in its first {len(head)}), not a paper dump"
    return None


def detect_format(head: str) -> str | None:
    """The format name for a file starting with `head`, or None when it is not recognisable."""
    text = head.lstrip("\ufeff \t\r\n")
    if not text:
        return None
    if text.startswith("<"):
        return "atom" if "<feed" in text[:4096] or text.startswith("<?xml") else None
    if text.startswith("["):
        return "hf_api"
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else None
        except ValueError:
            # A pretty-printed object over several lines, or a line longer than the sniffed head.
            return "jsonl" if first.startswith('{"') else None
    lines = [line.strip() for line in text.splitlines()[:40]]
    non_blank = [line for line in lines if line]
    if "Daily Papers" in non_blank[:12] or (non_blank and non_blank[0] == "new" and "" in lines[:3]):
        return "daily_page"
    if any(line.startswith("Get trending papers") for line in non_blank[:3]) or any(
        line.startswith("Subscribe") and len(line) > len("Subscribe") for line in non_blank[:4]
    ):
        return "listing"
    return _shape(non_blank, lines)


def _shape(non_blank: list[str], lines: list[str]) -> str | None:
    """No header: blank-line separated blocks read as a daily page, consecutive lines as a listing."""
    if len(non_blank) < 2:
        return None
    blank_separated = sum(1 for line in lines if not line) >= len(non_blank) // 2
    return "daily_page" if blank_separated else "listing"


def sniff(pieces: Iterable[str]) -> tuple[str, Iterator[str]]:
    """The first SNIFF_CHARS of the pieces, and an iterator that still yields every piece."""
    iterator = iter(pieces)
    head: list[str] = []
    size = 0
    for piece in iterator:
        head.append(piece)
        size += len(piece)
        if size >= SNIFF_CHARS:
            break
    return "".join(head)[:SNIFF_CHARS], chain(head, iterator)
