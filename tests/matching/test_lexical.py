"""BM25F scoring and boolean filtering over a pool."""

from __future__ import annotations

import numpy as np
import pytest

from service.matching.documents import analyze_paper
from service.matching.lexical import LexicalIndex
from service.matching.query import parse_query

from .corpus import PAPERS


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex([analyze_paper(p) for p in PAPERS])


def ids(index: LexicalIndex, mask: np.ndarray) -> set[str]:
    return {index.papers[i].doc.id for i in np.flatnonzero(mask)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"sparse attention"', {"p1"}),
        ("sparse attention", {"p1"}),  # p8 has "sparse" but not "attention"
        ("kv cache", {"p2"}),
        ("KV-cache", {"p2"}),
        ("kvcache", {"p2"}),
        ("quantiz*", {"p2", "p4"}),
        ("title:quantiz*", {"p4"}),
        ("llama-2", {"p4"}),
        ("3D", {"p8"}),
        ("author:turing", {"p1", "p3"}),
        ('author:"alan turing"', {"p1", "p3"}),
        ('author:"turing grace"', set()),  # never across two authors
        ("attention AND NOT (softmax OR graph)", {"p1", "p6"}),
        ("attention -dark -graph -softmax", {"p1"}),
        ('"dark matter" OR galaxy', {"p5", "p6"}),
        ('"analysis matter"', set()),
    ],
)
def test_boolean_filter(index: LexicalIndex, query: str, expected: set[str]) -> None:
    assert ids(index, index.mask(parse_query(query).root)) == expected


def test_title_match_outranks_abstract_match(index: LexicalIndex) -> None:
    scores = index.score(parse_query("attention").root)
    order = [index.papers[i].doc.id for i in np.argsort(-scores)]
    # p1 and p3 carry the word in their titles; p6/p7 only mention it once in the abstract.
    assert set(order[:2]) == {"p1", "p3"}
    assert scores[next(i for i, p in enumerate(index.papers) if p.doc.id == "p6")] > 0


def test_phrase_bonus(index: LexicalIndex) -> None:
    words = index.score(parse_query("sparse, attention").root)
    phrase = index.score(parse_query("sparse attention").root)
    p1 = 0
    assert phrase[p1] > words[p1]  # adjacent words earn the phrase bonus


def test_weights_scale_scores(index: LexicalIndex) -> None:
    plain = index.score(parse_query("galaxy").root)
    heavy = index.score(parse_query("galaxy^3").root)
    assert np.allclose(heavy, plain * 3)


def test_tfidf_rows_are_unit_length(index: LexicalIndex) -> None:
    matrix = index.tfidf()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0)


@pytest.mark.parametrize(
    "query",
    [
        '"sparse attention"^2, kv cache',
        "quantiz* OR title:attention",
        'abstract:"dark matter" -xenon',
        "kv-cache",
    ],
)
def test_kept_word_scores_are_those_of_a_fresh_index(query: str) -> None:
    """A pass asks one index for the same words profile after profile: what it keeps is what it computed."""
    root = parse_query(query).root
    used = LexicalIndex([analyze_paper(p) for p in PAPERS])
    first_scores, first_mask = used.score(root), used.mask(root)
    first_scores[:] = -1.0  # a caller writing into a result never changes what the index keeps
    first_mask[:] = False
    again_scores, again_mask = used.score(root), used.mask(root)
    fresh = LexicalIndex([analyze_paper(p) for p in PAPERS])
    assert np.array_equal(again_scores, fresh.score(root)) and again_scores.any()
    assert np.array_equal(again_mask, fresh.mask(root))
