"""Hybrid ranking on the lexical path: filters, seeds, feedback, thresholds, explanations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching import dedup
from service.matching.documents import PaperDoc
from service.matching.interests import Interest, InterestError
from service.matching.query import QueryError, parse_query
from service.matching.ranking import MatchContext, rank

from .corpus import PAPERS


@pytest.fixture(scope="module")
def context() -> MatchContext:
    return MatchContext(PAPERS)


def ids(matches: list) -> list[str]:
    return [m.paper_id for m in matches]


def test_keywords_rank_the_matching_papers_first(context: MatchContext) -> None:
    matches = rank(Interest("kv", keywords="kv cache, quantization"), context, top_k=3)
    assert ids(matches) == ["p2", "p4"]  # nothing else has any of the words
    assert [m.rank for m in matches] == [1, 2]
    assert matches[0].score >= matches[1].score


def test_query_and_exclusions_are_hard_filters(context: MatchContext) -> None:
    matches = rank(Interest("att", keywords="attention", query="NOT graph", exclude=["dark matter"]), context)
    assert set(ids(matches)) <= {"p1", "p2", "p3", "p4", "p5", "p8"}
    assert "p7" not in ids(matches) and "p6" not in ids(matches)


def test_seeds_find_similar_papers_and_are_not_returned(context: MatchContext) -> None:
    matches = rank(Interest("dm", seeds=["p5"]), context, top_k=2)
    assert ids(matches)[0] == "p6"  # the other dark matter paper
    assert "p5" not in ids(matches)
    assert matches[0].explanation.seeds[0].paper_id == "p5"
    assert "dark" in matches[0].explanation.shared_terms or "matter" in matches[0].explanation.shared_terms


def test_seeds_outside_the_pool_are_read_from_references() -> None:
    seed = PaperDoc(
        "old", "Dark matter halos", "Dark matter halos around galaxies and their rotation curves."
    )
    context = MatchContext(PAPERS, references=[seed])
    matches = rank(Interest("dm", seeds=["old"]), context, top_k=2)
    assert set(ids(matches)) == {"p5", "p6"}


XENON = PaperDoc(
    "xenon", "Xenon detectors", "Liquid xenon time projection chambers and their radon background."
)
HALOS = PaperDoc("halos", "Rotation curves", "Spiral galaxies, rotation curves and modified gravity fits.")


@pytest.mark.parametrize(
    ("liked", "disliked", "winner"), [("xenon", "halos", "p6"), ("halos", "xenon", "p5")]
)
def test_feedback_decides_between_equal_keyword_matches(liked: str, disliked: str, winner: str) -> None:
    context = MatchContext(PAPERS, references=[XENON, HALOS])
    assert {m.paper_id for m in rank(Interest("dm", keywords='"dark matter"'), context, top_k=2)} == {
        "p5",
        "p6",
    }
    for feedback in ({"liked": [liked]}, {"disliked": [disliked]}):
        interest = Interest("dm", keywords='"dark matter"', **feedback)
        assert rank(interest, context, top_k=1)[0].paper_id == winner, feedback


def test_feedback_papers_are_not_sent_again(context: MatchContext) -> None:
    matches = rank(Interest("a", keywords="attention", liked=["p1"], disliked=["p3"]), context, top_k=8)
    assert not {"p1", "p3"} & set(ids(matches))


def test_threshold_and_top_k(context: MatchContext) -> None:
    everything = rank(Interest("x", keywords="attention"), context, top_k=100)
    assert set(ids(everything)) == {"p1", "p3", "p6", "p7"}  # the papers that say "attention"
    strict = rank(Interest("x", keywords="attention", threshold=0.5), context, top_k=100)
    assert 0 < len(strict) < len(everything)
    assert all(m.score >= 0.5 for m in strict)
    assert len(rank(Interest("x", keywords="attention", top_k=2), context)) == 2


def test_candidates_restrict_results_but_not_statistics(context: MatchContext) -> None:
    matches = rank(Interest("x", keywords="attention"), context, candidates=["p6", "p7"])
    assert set(ids(matches)) == {"p6", "p7"}


def test_near_duplicates_are_suppressed() -> None:
    copy = PaperDoc("p2-v2", PAPERS[1].title, PAPERS[1].abstract + " Code is released.", ["Grace Hopper"])
    context = MatchContext([*PAPERS, copy])
    matches = rank(Interest("kv", keywords="kv cache"), context, top_k=5)
    assert len({"p2", "p2-v2"} & set(ids(matches))) == 1
    kept = rank(Interest("kv", keywords="kv cache"), context, top_k=5, dedupe=False)
    assert {"p2", "p2-v2"} <= set(ids(kept))


def test_pairs_remembered_per_pool_stay_bounded_and_rank_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = PaperDoc("p2-v2", PAPERS[1].title, PAPERS[1].abstract + " Code is released.", ["Grace Hopper"])
    context = MatchContext([*PAPERS, copy])
    interests = [Interest("kv", keywords="kv cache"), Interest("q", keywords="quantization, attention")]
    expected = [ids(rank(i, MatchContext([*PAPERS, copy]), top_k=5)) for i in interests]
    monkeypatch.setattr(dedup, "PAIRS_KEPT", 2)
    for _ in range(3):  # a pass ranks profile after profile against one pool
        assert [ids(rank(i, context, top_k=5)) for i in interests] == expected
        assert len(dedup._COMPARED[context].pairs) <= 2


def test_explanation_highlights_the_words_in_the_original_text(context: MatchContext) -> None:
    match = rank(Interest("kv", keywords='KV-cache, "4 bits"'), context, top_k=1)[0]
    why = match.explanation
    paper = PAPERS[1]
    assert match.paper_id == "p2"
    assert [paper.title[s:e] for s, e in why.title_highlights] == ["KV-cache", "KV", "cache"]
    snippet = why.snippet
    assert {snippet.text[s:e] for s, e in snippet.highlights} >= {"KV cache", "cache", "4", "bits"} - {
        "KV cache"
    }
    assert "KV-cache" in why.terms
    assert why.phrases == ["4 bits"]
    assert "KV-cache" in why.summary()
    assert set(why.signals) >= {"keywords_lexical"}


def test_snippet_window_is_cut_at_words() -> None:
    long = PaperDoc(
        "long", "Long", " ".join(["filler"] * 80) + " the target word appears here " + "tail " * 60
    )
    context = MatchContext([long, *PAPERS])
    snippet = rank(Interest("t", keywords="target"), context, top_k=1)[0].explanation.snippet
    assert snippet.clipped_start and snippet.clipped_end
    assert [snippet.text[s:e] for s, e in snippet.highlights] == ["target"]
    assert not snippet.text.startswith(" ") and len(snippet.text) <= 280


def test_no_evidence_no_match() -> None:
    assert rank(Interest("x", seeds=["unknown-id"]), MatchContext(PAPERS)) == []
    assert rank(Interest("x", keywords="superconductivity"), MatchContext(PAPERS)) == []
    assert rank(Interest("x", keywords="attention"), MatchContext([])) == []
    one = rank(Interest("x", keywords="xenon"), MatchContext(PAPERS[5:6]))
    assert ids(one) == ["p6"]


def test_invalid_interest_names_the_part() -> None:
    with pytest.raises(InterestError, match=r"^keywords: unterminated phrase"):
        rank(Interest("bad", keywords='"open'), MatchContext(PAPERS))
    with pytest.raises(InterestError, match=r"exclude\[1\]: "):
        rank(Interest("bad", keywords="x", exclude=["fine", "(broken"]), MatchContext(PAPERS))
    with pytest.raises(InterestError, match="needs keywords, a query, seed papers"):
        rank(Interest("empty"), MatchContext(PAPERS))


QUERY_PIECES = st.sampled_from(
    [
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
        "title:",
        "attention",
        " ",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(QUERY_PIECES, max_size=25).map("".join))
def test_any_valid_query_ranks_without_error(text: str) -> None:
    try:
        parse_query(text)
    except QueryError:
        return
    try:
        matches = rank(Interest("f", keywords=text, query=text, exclude=[text]), FUZZ_CONTEXT)
    except InterestError as error:
        assert "expands to more than" in str(error)
    else:
        assert not matches  # a paper can never match a query and its own exclusion


FUZZ_CONTEXT = MatchContext(PAPERS)
