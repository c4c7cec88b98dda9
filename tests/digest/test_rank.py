"""rank_papers: stored profiles ranked by the real matching engine, with reasons."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.rank import rank_papers
from service.matching import semantic_available
from service.models import Feedback, Interest, Paper, PaperEmbedding, Profile
from tests.matching.corpus import PAPERS


def _store(db: Session) -> dict[str, Paper]:
    stored = {}
    for doc in PAPERS:
        paper = Paper(
            key=f"title:{doc.id}", title=doc.title, abstract=doc.abstract, authors=list(doc.authors)
        )
        db.add(paper)
        stored[doc.id] = paper
    db.flush()
    return stored


def _profile(db: Session, **interest: object) -> Profile:
    profile = Profile(name="ada", interests=[Interest(name="attention", **interest)])
    db.add(profile)
    db.flush()
    return profile


def test_keywords_rank_matching_papers_first_with_reasons(db: Session) -> None:
    papers = _store(db)
    profile = _profile(db, keywords='"sparse attention"^2, linear attention')
    items = rank_papers(db, profile, list(papers.values()), settings=Settings(_env_file=None, semantic=False))
    assert items, "nothing ranked"
    assert items[0].paper_id == papers["p1"].id
    assert {papers["p1"].id, papers["p3"].id} <= {i.paper_id for i in items[:3]}
    assert papers["p5"].id not in {i.paper_id for i in items}  # galaxies share no word nor meaning
    top = items[0]
    assert top.interest == "attention"
    assert "sparse attention" in " ".join(top.matched_terms).lower()
    assert any(seg.hit for seg in top.snippet)
    assert "".join(s.text for s in top.snippet if s.text != "…") in papers["p1"].abstract
    assert "sparse attention" in top.why.lower()


def test_query_filters_and_exclusions_are_hard(db: Session) -> None:
    papers = _store(db)
    profile = _profile(db, keywords="attention", query="attention NOT linear", exclude="block")
    items = rank_papers(db, profile, list(papers.values()), settings=Settings(_env_file=None, semantic=False))
    ids = {i.paper_id for i in items}
    assert papers["p3"].id not in ids  # NOT linear
    assert papers["p1"].id not in ids  # excluded term "block"


def test_seeds_and_feedback_shift_the_ranking(db: Session) -> None:
    papers = _store(db)
    profile = _profile(db, seeds=[papers["p2"].id])
    settings = Settings(_env_file=None, semantic=False)
    pool = [p for key, p in papers.items() if key != "p2"]
    before = [i.paper_id for i in rank_papers(db, profile, pool, settings=settings)]
    assert papers["p4"].id in before[:2]  # quantisation of LLMs, like the KV-cache seed
    assert papers["p5"].id not in before  # nothing in common with the seed
    db.add(Feedback(profile_id=profile.id, paper_id=papers["p4"].id, relevant=False))
    db.flush()
    db.refresh(profile)
    after = [i.paper_id for i in rank_papers(db, profile, pool, settings=settings)]
    assert papers["p4"].id not in after  # a paper judged is not offered again


def test_interest_with_nothing_to_match_is_skipped(db: Session) -> None:
    papers = _store(db)
    profile = _profile(db)
    assert (
        rank_papers(db, profile, list(papers.values()), settings=Settings(_env_file=None, semantic=False))
        == []
    )


def test_embeddings_are_cached_once_per_paper(db: Session) -> None:
    if not semantic_available():
        import pytest

        pytest.skip("the [semantic] extra is not installed")
    papers = _store(db)
    profile = _profile(db, keywords="attention")
    settings = Settings(_env_file=None, semantic=True)
    first = rank_papers(db, profile, list(papers.values()), settings=settings)
    count = db.scalar(select(func.count()).select_from(PaperEmbedding))
    assert count == len(papers)
    second = rank_papers(db, profile, list(papers.values()), settings=settings)
    assert db.scalar(select(func.count()).select_from(PaperEmbedding)) == count
    assert [i.paper_id for i in first] == [i.paper_id for i in second]


def test_why_quotes_the_keywords_as_written_and_every_title_links(db: Session) -> None:
    papers = _store(db)
    profile = _profile(db, keywords='"KV cache"^2, quantization')
    items = rank_papers(db, profile, list(papers.values()), settings=Settings(_env_file=None, semantic=False))
    by_id = {i.paper_id: i for i in items}
    assert by_id[papers["p2"].id].why.startswith("matches “KV cache”")
    # No arXiv id or URL in the dump: the title links to an arXiv title search, never to nothing.
    assert by_id[papers["p2"].id].url.startswith("https://arxiv.org/search/?query=Compressing+the+KV-cache")


def test_profiles_ranking_the_same_papers_share_one_index_until_a_text_changes(db: Session) -> None:
    from service.digest.rank import match_context, paper_doc

    papers = _store(db)
    pool = [paper_doc(p) for p in papers.values()]
    first = match_context(db, pool, [], None)
    assert match_context(db, [paper_doc(p) for p in papers.values()], [], None) is first
    papers["p1"].abstract += " Corrected."
    edited = match_context(db, [paper_doc(p) for p in papers.values()], [], None)
    assert edited is not first
    assert "Corrected." in edited.docs[0].abstract
