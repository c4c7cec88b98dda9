"""The query language: what parses into what, and errors that point at the problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching.query import And, Not, Or, Phrase, QueryError, Term, parse_query


def test_weighted_keywords_separated_by_commas() -> None:
    query = parse_query('"sparse attention"^2, kv cache, linear attention')
    first, second, third = query.clauses
    assert first == Phrase(("spars", "attent"), (0, 1), weight=2.0, source="sparse attention")
    assert second == And((Term("kv"), Term("cach")))
    assert third == And((Term("linear"), Term("attent")))


def test_boolean_operators_fields_prefix_and_grouping() -> None:
    root = parse_query('title:(quantiz* OR "low bit") AND NOT author:smith').root
    assert root == And(
        (
            Or(
                (
                    Term("quantiz", "title", prefix=True),
                    Phrase(("low", "bit"), (0, 1), "title", source="low bit"),
                )
            ),
            Not(Term("smith", "author")),
        )
    )


def test_minus_excludes_and_compound_matches_joined_or_parts() -> None:
    root = parse_query("KV-cache -llama").root
    assert root == And(
        (
            Or((Term("kvcach"), Phrase(("kv", "cach"), (0, 1), source="KV-cache"))),
            Not(Term("llama")),
        )
    )


def test_lower_case_operators_are_words() -> None:
    assert parse_query("black or white").root == And((Term("black"), Term("white")))


def test_phrase_keeps_stop_word_gaps() -> None:
    assert parse_query('"analysis of PDEs"').root == Phrase(
        ("analysi", "pde"), (0, 2), source="analysis of PDEs"
    )


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("foo AND )", 4, "AND needs something on its right"),
        ("(a OR b", 0, "missing closing parenthesis"),
        ('quantum "black hole', 8, "unterminated phrase"),
        ("kv OR", 3, "OR needs something on its right"),
        ("OR a", 0, "OR needs something on its left"),
        ("venue:neurips", 0, "unknown field 'venue'"),
        ("x^y", 1, "a weight must be a number"),
        ("x^0", 2, "greater than 0"),
        ("", 0, "empty query"),
        ("the, of", 0, "nothing to search for"),
        ("q*", 1, "at least 3 letters"),
        ("kv, , b", 4, "empty keyword"),
        ("()", 0, "empty parentheses"),
        ("NOT", 0, "NOT needs something"),
        ("title:", 0, "title: needs"),
        ("kv ) b", 3, "unexpected ')'"),
        ("(" * 40 + "a" + ")" * 40, 32, "nested too deeply"),
    ],
)
def test_errors_carry_position_and_caret(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    error = caught.value
    assert error.position == position
    assert message in str(error)
    lines = str(error).splitlines()
    assert lines[1].strip() == text.strip()
    assert lines[2].index("^") - 2 == position  # the caret sits under the offending character


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
    else:
        assert query.clauses


QUERY_ALPHABET = st.sampled_from(
    [
        "a",
        "quantum",
        "KV-cache",
        "AND",
        "OR",
        "NOT",
        "-",
        "(",
        ")",
        '"',
        ",",
        "^",
        "2",
        "*",
        ":",
        "title",
        " ",
        " ",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(QUERY_ALPHABET, max_size=30).map("".join))
def test_grammar_shaped_text_parses_or_raises_query_error(text: str) -> None:
    try:
        parse_query(text)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
