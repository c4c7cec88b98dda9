"""`paperboy match PROFILE`: stored papers ranked for a stored profile, through Typer's runner."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine

from service.cli.match import parse_since
from service.db import session_scope
from service.models import Paper, Profile
from tests.cli import run_cli as run
from tests.matching.corpus import PAPERS

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def cli_db(cli_env: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Lexical path only: no model load in these tests."""
    monkeypatch.setenv("SEMANTIC", "false")
    return cli_env


def store_papers(
    engine: Engine, *, old: set[str] = frozenset(), titles: dict[str, str] | None = None
) -> dict[str, int]:
    """The test corpus as stored papers, seen a day ago (those in `old`: 30 days ago)."""
    ids = {}
    with session_scope(engine) as session:
        for doc in PAPERS:
            seen = NOW - dt.timedelta(days=30 if doc.id in old else 1)
            paper = Paper(
                key=f"title:{doc.id}",
                title=(titles or {}).get(doc.id, doc.title),
                abstract=doc.abstract,
                authors=list(doc.authors),
                url=f"https://example.org/{doc.id}",
                first_seen_at=seen,
            )
            session.add(paper)
            session.flush()
            ids[doc.id] = paper.id
    return ids


def set_interest(profile: str, interest: str, *options: str) -> None:
    code, out = run("profile", "set", profile, "--interest", interest, *options)
    assert code == 0, out


def test_ranked_papers_with_score_interest_reason_and_snippet(cli_db: Engine) -> None:
    store_papers(cli_db)
    set_interest("ada", "attention", "--keywords", '"sparse attention"^2, linear attention')
    code, out = run("match", "ada")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("profile ada: ")
    assert "papers first seen since" in lines[0]
    first = lines[1]
    assert first.startswith(" 1. Sparse attention for long documents") and "· attention" in first
    assert "score " in first
    assert lines[2].strip() == "https://example.org/p1"
    assert lines[3].strip().startswith("why: matches") and "sparse attention" in lines[3].lower()
    assert "sparse attention patterns" in lines[4].lower()  # the snippet
    assert "Galaxy rotation" not in out  # shares no word with the interest


def test_since_keeps_older_papers_out_until_asked(cli_db: Engine) -> None:
    store_papers(cli_db, old={"p1"})
    set_interest("ada", "attention", "--keywords", "sparse attention")
    code, out = run("match", "ada")
    assert code == 0, out
    assert "Sparse attention for long documents" not in out
    since = (NOW - dt.timedelta(days=40)).date().isoformat()
    code, out = run("match", "ada", "--since", since)
    assert code == 0, out
    assert "Sparse attention for long documents" in out
    code, out = run("match", "ada", "--since", "45d")
    assert code == 0 and "Sparse attention for long documents" in out


def test_json_output_carries_highlight_spans(cli_db: Engine) -> None:
    ids = store_papers(cli_db)
    set_interest("ada", "attention", "--keywords", "linear attention")
    code, out = run("match", "ada", "--json", "--limit", "1")
    assert code == 0, out
    document = json.loads(out)
    assert document["profile"] == "ada" and document["interests"] == ["attention"]
    assert document["papers"] == len(PAPERS) and document["matched"] >= 1
    [top] = document["matches"]
    assert top["paper_id"] == ids["p3"] and top["rank"] == 1 and top["interest"] == "attention"
    marked = [top["snippet"][start:end].lower() for start, end in top["highlights"]]
    assert marked and set(marked) <= {"linear", "attention"}, marked


def test_interest_option_limits_and_validates(cli_db: Engine) -> None:
    ids = store_papers(cli_db)
    set_interest("ada", "attention", "--keywords", "sparse attention")
    set_interest("ada", "quantization", "--keywords", "quantiz*")
    code, out = run("match", "ada", "--interest", "quantization", "--json")
    assert code == 0, out
    matches = json.loads(out)["matches"]
    assert [m["paper_id"] for m in matches][:1] == [ids["p4"]]
    assert {m["interest"] for m in matches} == {"quantization"}
    code, out = run("match", "ada", "--interest", "astronomy")
    assert code == 2
    assert "has no interest 'astronomy'; it has: attention, quantization" in out


def test_limit_says_how_many_are_shown(cli_db: Engine) -> None:
    store_papers(cli_db)
    set_interest("ada", "attention", "--keywords", "attention")
    code, out = run("match", "ada", "--limit", "1")
    assert code == 0, out
    assert "(showing 1)" in out.splitlines()[0]
    assert " 1. " in out and " 2. " not in out


def test_paper_text_is_never_read_as_markup(cli_db: Engine) -> None:
    store_papers(cli_db, titles={"p1": "Sparse attention [red]for[/red] long documents [b]"})
    set_interest("ada", "attention", "--keywords", "sparse attention")
    code, out = run("match", "ada")
    assert code == 0, out
    assert "Sparse attention [red]for[/red] long documents [b]" in out


def test_bad_input_exits_2_and_says_what(cli_db: Engine) -> None:
    code, out = run("match", "nobody")
    assert code == 2 and "no profile named 'nobody'" in out
    set_interest("ada", "attention", "--keywords", "attention")
    code, out = run("match", "ada", "--since", "last tuesday")
    assert code == 2 and "--since 'last tuesday' is not a date" in out
    with session_scope(cli_db) as session:
        session.add(Profile(name="empty"))
    code, out = run("match", "empty")
    assert code == 2 and "has no interests" in out


def test_nothing_new_is_not_an_error(cli_db: Engine) -> None:
    set_interest("ada", "attention", "--keywords", "attention")
    code, out = run("match", "ada")
    assert code == 0 and "0 of 0 papers" in out


def test_parse_since() -> None:
    now = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
    assert parse_since(None, now) == now - dt.timedelta(days=7)
    assert parse_since("2026-11-01", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert parse_since("2026-11-01T10:00", now) == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert parse_since("2026-11-01T10:00+02:00", now) == dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    assert parse_since("3d", now) == now - dt.timedelta(days=3)
    with pytest.raises(ValueError, match="not a date"):
        parse_since("2026-13-01", now)
