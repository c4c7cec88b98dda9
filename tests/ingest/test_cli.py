"""`paperboy ingest`, `paperboy papers ...` and `paperboy export`, run through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from service.models import IngestRun, Paper
from tests.cli import run_cli as run
from tests.ingest.helpers import FIXTURES, fixture


@pytest.fixture
def cli_db(cli_env: Engine) -> Engine:
    return cli_env


def test_ingest_prints_a_table_and_exits_by_outcome(cli_db: Engine) -> None:
    code, out = run("ingest", str(fixture("listing_small.txt")), str(fixture("arxiv_feed.xml")))
    assert code == 1, out  # the feed holds an API error entry and an entry without a title
    assert "listing_small.txt" in out and "listing (detected)" in out and "atom (detected)" in out
    assert "arxiv_feed.xml: line 31: the arXiv API reported an error" in out

    code, out = run("ingest", str(fixture("daily_page_small.txt")))
    assert code == 0, out
    assert "done (run " in out

    code, out = run("ingest", str(fixture("listing_small.txt")))
    assert code == 0 and "skipped" in out and "same as run " in out

    code, out = run("ingest", str(fixture("papers.jsonl")))
    assert code == 1  # lines were rejected
    assert "papers.jsonl: line 3: not valid JSON" in out


def test_ingest_a_folder_with_an_explicit_format(cli_db: Engine, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A Title\nAn abstract here.\n")
    (tmp_path / ".hidden").write_text("ignored")
    code, out = run("ingest", str(tmp_path), "--format", "listing")
    assert code == 0, out
    assert "a.txt" in out and ".hidden" not in out and "(detected)" not in out


def test_ingest_of_an_empty_folder_says_so(cli_db: Engine, tmp_path: Path) -> None:
    code, out = run("ingest", str(tmp_path))
    assert code == 2 and "no files to ingest" in out


def test_ingest_rejects_an_unknown_format(cli_db: Engine) -> None:
    code, out = run("ingest", str(fixture("listing_small.txt")), "--format", "pdf")
    assert code == 2 and "unknown format 'pdf'" in out


def test_ingest_dry_run_stores_nothing(cli_db: Engine) -> None:
    code, out = run("ingest", "--dry-run", str(fixture("listing_small.txt")))
    assert code == 0 and "dry run" in out
    code, out = run("papers", "list")
    assert "no papers" in out


def test_papers_list_show_search(cli_db: Engine) -> None:
    run("ingest", str(fixture("arxiv_feed.xml")), str(fixture("daily_page_small.txt")))
    code, out = run("papers", "list", "--limit", "2")
    assert code == 0 and "papers (2 of 5)" in out

    code, out = run("papers", "show", "2401.01234v2")
    assert code == 0
    assert "Sparse Widgets for Everyone" in out and "https://github.com/example-lab/sparse-widgets" in out
    assert "Ada Example, Bo Sample" in out

    code, out = run("papers", "search", "long CONTEXTS")
    assert code == 0 and "Lanterns" in out and "Sparse Widgets" not in out

    code, out = run("papers", "show", "999999")
    assert code == 1 and "no paper" in out


def test_export_then_ingest_gives_the_same_papers(cli_db: Engine, tmp_path: Path) -> None:
    for name in ("listing_small.txt", "arxiv_feed.xml", "hf_daily_papers.json", "daily_page_small.txt"):
        run("ingest", str(FIXTURES / name), "--today", "2026-11-23")
    out_file = tmp_path / "export.jsonl"
    code, _ = run("export", "--out", str(out_file))
    assert code == 0
    exported = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(exported) == 8  # 3 + 1 + 2 + 2 new papers; the rest were the same papers again

    with Session(cli_db) as session, session.begin():
        session.execute(delete(Paper))
        session.execute(delete(IngestRun))
    code, out = run("ingest", str(out_file))
    assert code == 0 and "jsonl (detected)" in out
    second = tmp_path / "again.jsonl"
    run("export", "--out", str(second))
    again = [json.loads(line) for line in second.read_text().splitlines()]

    def comparable(obj: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in obj.items() if k not in {"source", "first_seen_at"}}

    assert [comparable(o) for o in again] == [comparable(o) for o in exported]
