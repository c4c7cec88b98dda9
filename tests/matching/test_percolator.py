"""The percolator finds exactly the pairs a profile-by-profile boolean check finds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from service.matching.documents import analyze_paper
from service.matching.interests import Interest, InterestError, compile_interest
from service.matching.lexical import LexicalIndex
from service.matching.percolator import ProfileIndex, percolate

from .corpus import PAPERS

WORDS = [
    "attention",
    '"sparse attention"',
    "kv cache",
    "KV-cache",
    "quantiz*",
    "title:attention",
    "author:turing",
    "dark matter",
    '"dark matter"',
    "galaxy",
    "graph",
    "3D",
    "LLaMA-2",
    "memory",
    "linear",
    "softmax",
    "xenon",
]


def brute_force(interests: list[tuple[str, Interest]]) -> set[tuple[str, str]]:
    index = LexicalIndex([analyze_paper(p) for p in PAPERS])
    found = set()
    for profile_id, interest in interests:
        compiled = compile_interest(interest)
        mask = np.ones(len(PAPERS), dtype=bool)
        for parsed in (compiled.keywords, compiled.query):
            if parsed is not None:
                mask &= index.mask(parsed.root)
        for node in compiled.exclude:
            mask &= ~index.mask(node)
        found |= {(PAPERS[i].id, profile_id) for i in np.flatnonzero(mask)}
    return found


def random_interests(seed: int, count: int) -> list[tuple[str, Interest]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        keywords = ", ".join(rng.sample(WORDS, rng.randint(1, 3)))
        query = ""
        if rng.random() < 0.4:
            a, b = rng.sample(WORDS, 2)
            query = rng.choice([f"{a} OR {b}", f"{a} AND NOT {b}", f"NOT ({a} OR {b})", f"-{a}"])
        exclude = rng.sample(WORDS, 1) if rng.random() < 0.3 else []
        out.append((f"i{i}", Interest(f"i{i}", keywords, query, exclude)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_percolator_agrees_with_brute_force(seed: int) -> None:
    interests = random_interests(seed, 60)
    result = percolate(ProfileIndex(interests), [analyze_paper(p) for p in PAPERS])
    got = {
        (result.paper_ids[r], result.profile_ids[c])
        for r, c in zip(result.paper_rows, result.profile_rows, strict=True)
    }
    assert got == brute_force(interests)
    assert (result.scores > 0).all()
    # A pool's match context lends its index (already built over the same analysed papers): same pairs.
    analysed = [analyze_paper(p) for p in PAPERS]
    lent = percolate(ProfileIndex(interests), analysed, LexicalIndex(analysed))
    assert np.array_equal(lent.paper_rows, result.paper_rows)
    assert np.array_equal(lent.profile_rows, result.profile_rows)
    assert np.allclose(lent.scores, result.scores)


def test_by_profile_orders_by_score_and_limits() -> None:
    interests = [("a", Interest("a", "attention")), ("b", Interest("b", "galaxy, xenon"))]
    result = percolate(ProfileIndex(interests), [analyze_paper(p) for p in PAPERS])
    ranked = result.by_profile(top_k=2)
    assert [pid for pid, _ in ranked["a"]] == ["p3", "p1"] or [pid for pid, _ in ranked["a"]] == ["p1", "p3"]
    assert len(ranked["a"]) == 2
    assert {pid for pid, _ in ranked["b"]} == {"p5", "p6"}
    scores = [s for _, s in ranked["a"]]
    assert scores == sorted(scores, reverse=True)


def test_percolator_only_meets_profiles_sharing_a_word() -> None:
    interests = [(f"x{i}", Interest(f"x{i}", f"unrelatedword{i}")) for i in range(500)]
    interests.append(("hit", Interest("hit", "xenon")))
    result = percolate(ProfileIndex(interests), [analyze_paper(p) for p in PAPERS])
    assert result.candidate_pairs == 1  # 8 papers x 501 profiles, one shared term
    assert result.by_profile() == {"hit": [("p6", pytest.approx(result.scores[0]))]}


def test_too_complex_query_is_refused_when_saved() -> None:
    query = " AND ".join(f"(a{i} OR b{i})" for i in range(10))  # 2**10 alternatives
    with pytest.raises(InterestError, match="query: the query expands to more than 256"):
        compile_interest(Interest("x", query=query))
