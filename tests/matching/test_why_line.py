"""The why-line is true and useful: which words of which keyword matched, the seed a paper resembles,
or closeness in meaning; never a phrase the paper lacks, never the interest's name repeated."""

from __future__ import annotations

from service.matching.documents import PaperDoc
from service.matching.explain import Explanation, KeywordEvidence, SeedEvidence
from service.matching.interests import Interest
from service.matching.ranking import MatchContext, rank

KEYWORD = "diffusion models for image generation"
PAPERS = [
    PaperDoc("phrase", "Diffusion models for image generation at scale", "We scale up a sampler."),
    PaperDoc("scattered", "Image restoration", "A diffusion process restores each image it is given."),
    PaperDoc("attention", "Sparse attention for long inputs", "Sparse attention cuts the cost of context."),
    PaperDoc("spread", "Sparse codes", "Attention heads read sparse codes of the input tokens."),
    PaperDoc("other", "Dark matter halos", "Rotation curves of spiral galaxies."),
]


def _why(interest: Interest) -> dict[str, str]:
    context = MatchContext(PAPERS)
    return {m.paper_id: m.explanation.summary(interest.name) for m in rank(interest, context, top_k=10)}


def test_a_phrase_is_quoted_only_when_the_paper_holds_it() -> None:
    why = _why(Interest("images", keywords=KEYWORD))
    assert why["phrase"] == f"matches “{KEYWORD}”; for your interest “images”"
    assert why["scattered"] == (
        f"matches diffusion, image (2 of 4 words of “{KEYWORD}”); for your interest “images”"
    )


def test_the_interest_is_not_repeated_when_the_line_already_names_it() -> None:
    why = _why(Interest("sparse attention", keywords="sparse attention"))
    assert why["attention"] == "matches “sparse attention”"
    assert why["spread"] == "matches sparse, attention (2 of 2 words of “sparse attention”)"


def test_a_seed_match_names_the_seed_and_a_meaning_match_says_so() -> None:
    explanation = Explanation(seeds=[SeedEvidence("s1", "Efficient Transformers", 0.8)])
    assert explanation.summary("transformers") == (
        "resembles “Efficient Transformers”; for your interest “transformers”"
    )
    only_meaning = Explanation(keywords=[KeywordEvidence("RLHF", (), 1, False)])
    assert only_meaning.summary("alignment") == "close in meaning to your interest “RLHF”"
    assert Explanation().summary("alignment") == "close in meaning to your interest “alignment”"
