"""Which format a dump is in, from its first few KiB."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain

SNIFF_CHARS = 16384


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
