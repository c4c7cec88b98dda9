"""Binary files (random bytes, images, archives) are rejected as a whole with one message; text is not."""

from __future__ import annotations

import codecs
import gzip
import random
import struct
import zlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from service.ingest.detect import BINARY_SNIFF_BYTES, binary_reason
from service.ingest.runs import ingest_file
from service.models import IngestRun, Paper
from tests.cli import run_cli
from tests.ingest.helpers import fixture

LISTING = (
    "Subscribe to the feed\n"
    "A Study of Caf\u00e9 Queues\nAda Lovelace, Zo\u00eb Brown\nWe study queues in caf\u00e9s. "
    "Mar 3, 2026\n\n"
)


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    """A real (valid) PNG image, built from its chunks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + random.Random(3).randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _papers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Paper)).scalar_one())


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("random.txt", random.Random(1).randbytes(5 * 1024 * 1024), "the file is binary"),
        ("figure.png", png_bytes(), "a PNG image"),
        ("dump.jsonl.gz", gzip.compress(b'{"title": "x"}\n' * 500), "gzip file: unpack it first"),
    ],
)
def test_a_binary_file_is_rejected_whole_with_one_message(
    committed_engine: Engine, tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = ingest_file(committed_engine, path)
    assert report.status == "failed"
    assert len(report.errors) == 1 and needle in report.errors[0] and "nothing was read" in report.errors[0]
    assert (report.new, report.updated, report.rejected) == (0, 0, 0)
    assert _papers(committed_engine) == 0
    with committed_engine.connect() as conn:
        assert conn.execute(select(IngestRun.status)).scalars().all() == ["failed"]


def test_the_command_reports_a_binary_file_in_one_line(cli_env: Engine, tmp_path: Path) -> None:
    path = tmp_path / "random.txt"
    path.write_bytes(random.Random(2).randbytes(1 << 20))
    code, output = run_cli("ingest", str(path))
    assert code == 1, output
    assert output.count("the file is binary") == 1, output
    assert "line " not in output  # no per-line errors for a file that was never text
    assert _papers(cli_env) == 0


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.replace("\n", "\r\n").encode("cp1252"),
        lambda text: text.replace("\n", "\r").encode("latin-1"),
        lambda text: "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"),
    ],
    ids=["utf8", "utf8-bom", "cp1252-crlf", "latin1-cr", "utf16-bom"],
)
def test_text_in_any_encoding_is_not_taken_for_binary(encode) -> None:  # type: ignore[no-untyped-def]
    assert binary_reason(encode(LISTING * 40)[:BINARY_SNIFF_BYTES]) is None


def test_latin1_text_still_ingests(committed_engine: Engine, tmp_path: Path) -> None:
    text = fixture("listing_small.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    path = tmp_path / "latin1.txt"
    path.write_bytes(text.encode("cp1252", errors="replace"))
    report = ingest_file(committed_engine, path)
    assert report.status == "done" and report.new > 0, report.errors
