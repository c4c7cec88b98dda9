"""Bytes to text, one line at a time, whatever the file's encoding and line endings.

Files are read as a user hands them over: UTF-8 with or without a BOM, Latin-1/Windows-1252, CRLF or
CR line endings, binary junk in the middle. Memory stays bounded by MAX_PIECE and MAX_LINE whatever
the file size.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAX_PIECE = 1 << 18  # 256 KiB read at a time; lines longer than MAX_LINE are not paper lines
MAX_LINE = 1 << 20  # 1 MiB: no title or abstract is anywhere near; JSON/XML take longer lines


@dataclass
class Decoding:
    """What decoding found out about a file, for the ingest report."""

    encoding: str = "utf-8"
    fallback_lines: list[int] = field(default_factory=list)  # lines decoded as Windows-1252/Latin-1
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.fallback_lines:
            return self.encoding
        return f"{self.encoding}, {len(self.fallback_lines)} line(s) as Windows-1252/Latin-1"


def read_pieces(stream: BinaryIO, max_piece: int = MAX_PIECE) -> Iterator[bytes]:
    """The stream in pieces of whole lines, about max_piece bytes each; a longer line comes in parts.

    Big pieces keep the per-line Python work out of reading: lines are split later by str.split.
    """
    rest = b""
    while True:
        block = stream.read(max_piece)
        if not block:
            if rest:
                yield rest
            return
        data = rest + block if rest else block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) >= max_piece:  # part of an overlong line
                yield data
                data = b""
            rest = data
            continue
        yield data[:cut]
        rest = data[cut:]


def _decode_legacy(raw: bytes) -> str:
    # Windows-1252 is what "Latin-1" files usually are; its five undefined bytes fall back to Latin-1.
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_lines(piece: bytes, first_line: int, decoding: Decoding) -> str:
    """A piece that is not valid UTF-8 as a whole, decoded line by line with the legacy fallback."""
    out = []
    for offset, raw in enumerate(piece.split(b"\n")):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(_decode_legacy(raw))
            if len(decoding.fallback_lines) < 1000:
                decoding.fallback_lines.append(first_line + offset)
    return "\n".join(out)


def decode_pieces(raw_pieces: Iterable[bytes], decoding: Decoding | None = None) -> Iterator[str]:
    """Decode each piece as UTF-8, falling back per line to Windows-1252/Latin-1 (noted in `decoding`).

    A multi-byte character cut at a piece boundary is carried over to the next piece.
    """
    decoding = decoding if decoding is not None else Decoding()
    line = 1
    carry = b""
    first = True
    for piece in raw_pieces:
        if first:
            first = False
            if piece.startswith(codecs.BOM_UTF8):
                piece = piece[len(codecs.BOM_UTF8) :]
                decoding.encoding = "utf-8-sig"
            elif piece.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                decoding.notes.append("file starts with a UTF-16 byte-order mark; save it as UTF-8")
        if carry:
            piece = carry + piece
            carry = b""
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError as exc:
            cut = exc.reason == "unexpected end of data" and exc.start >= len(piece) - 3
            if cut and b"\n" not in piece[exc.start :]:
                # A character split across pieces: finish it with the next piece.
                carry = piece[exc.start :]
                piece = piece[: exc.start]
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError:
                text = _decode_lines(piece, line, decoding)
        if text:
            yield text
        line += piece.count(b"\n")
    if carry:
        yield _decode_legacy(carry)


def line_batches(pieces: Iterable[str], max_line: int = MAX_LINE) -> Iterator[tuple[int, list[str | None]]]:
    """(number of the first line, the lines a piece ends) for \\n, \\r\\n and \\r endings.

    A line is given without its ending, None when overlong. Pieces may hold many lines (a test's
    whole string) or part of one (a long line read in pieces). A list per piece, not a tuple per
    line, keeps the per-line work of a parser in its own loop.
    """
    number = 1
    buf = ""  # the start of the current line, not ended yet
    overlong = False
    pending_cr = False  # the last piece ended with \r: a \n starting the next one is the same ending
    for piece in pieces:
        if pending_cr:
            pending_cr = False
            if piece.startswith("\n"):
                piece = piece[1:]
        if "\r" in piece:
            pending_cr = piece.endswith("\r")
            piece = piece.replace("\r\n", "\n").replace("\r", "\n")
        lines: list[str | None] = piece.split("\n")  # type: ignore[assignment]
        tail = lines.pop()
        if lines:
            if buf or overlong:
                first = buf + lines[0]  # type: ignore[operator]
                lines[0] = None if overlong or len(first) > max_line else first
                buf, overlong = "", False
            if len(piece) > max_line:  # only then can a line of this piece alone be overlong
                lines = [None if line is not None and len(line) > max_line else line for line in lines]
            yield number, lines
            number += len(lines)
        if tail and not overlong:
            buf += tail
            if len(buf) > max_line:
                overlong, buf = True, ""
    if buf or overlong:
        yield number, [None if overlong else buf]


def numbered_lines(pieces: Iterable[str], max_line: int = MAX_LINE) -> Iterator[tuple[int, str | None]]:
    """(line number, line without its ending) for \\n, \\r\\n and \\r endings; None for an overlong line.

    Pieces may hold many lines (a test's whole string) or part of one (a long line read in pieces).
    """
    for number, lines in line_batches(pieces, max_line):
        for line in lines:
            yield number, line
            number += 1


def read_text_lines(path: Path, decoding: Decoding | None = None) -> Iterator[str]:
    """The decoded pieces of a file; the file is closed when the iterator is exhausted or closed."""
    with path.open("rb") as stream:
        yield from decode_pieces(read_pieces(stream), decoding)
