"""Places shared across a reader's interests, and the coverage measure."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.model import DigestItem
from service.digest.rank import rank_papers
from service.matching import semantic_available
from service.matching.diversity import allocate, interest_coverage
from service.matching.evaluation import evaluate, format_table, load_dataset
from service.matching.mixed_readers import mixed_readers
from service.models import Interest, Paper, Profile
from tests.matching.test_eval import write_set


def test_interests_take_turns_strongest_first() -> None:
    # (interest, score): topic a scores far above b and c.
    items = [("a", 5.0), ("a", 4.8), ("a", 4.6), ("a", 4.4), ("b", 1.0), ("b", 0.9), ("c", 0.5)]
    by_score = sorted(items, key=lambda item: -item[1])
    ordered = allocate(items, lambda item: item[0], lambda item: item[1])
    assert {name for name, _ in by_score[:3]} == {"a"}
    assert [name for name, _ in ordered[:3]] == ["a", "b", "c"]  # each interest's best, best first
    # Then each one's second best; c has no more, so its turns go to the others; a's last two close.
    assert ordered[3:] == [("a", 4.8), ("b", 0.9), ("a", 4.6), ("a", 4.4)]
    assert sorted(ordered) == sorted(items)  # nothing lost or repeated


def test_within_a_turn_the_higher_score_goes_first() -> None:
    items = [("a", 3.0), ("a", 0.1), ("b", 2.0), ("b", 1.9)]
    ordered = allocate(items, lambda item: item[0], lambda item: item[1])
    # Second turn: b's 1.9 beats a's 0.1, although a led the first turn.
    assert ordered == [("a", 3.0), ("b", 2.0), ("b", 1.9), ("a", 0.1)]
    assert allocate([], lambda item: item[0], lambda item: item[1]) == []


def test_on_the_lexical_path_only_the_first_turn_is_taken() -> None:
    items = [("a", 5.0), ("a", 4.8), ("a", 4.6), ("b", 1.0), ("b", 0.9), ("c", 0.5)]
    ordered = allocate(items, lambda item: item[0], lambda item: item[1], semantic=False)
    # Each interest's best first; then by score, so the strong interest takes the next places.
    assert ordered == [("a", 5.0), ("b", 1.0), ("c", 0.5), ("a", 4.8), ("a", 4.6), ("b", 0.9)]


def test_interest_coverage() -> None:
    assert interest_coverage([{"a"}, {"a"}, set()], ["a", "b", "c"]) == 1 / 3
    assert interest_coverage([{"a", "b"}, {"c"}], ["a", "b", "c"]) == 1.0
    assert interest_coverage([], []) == 0.0


def ranked(
    db: Session, papers: list[Paper], keywords: dict[str, str], settings: Settings
) -> list[DigestItem]:
    """The papers stored, then ranked for a reader with an interest per (name, keywords)."""
    db.add_all(papers)
    interests = [Interest(name=name, keywords=words) for name, words in keywords.items()]
    profile = Profile(name="ada", interests=interests)
    db.add(profile)
    db.flush()
    return rank_papers(db, profile, papers, settings=settings)


def test_digest_of_a_three_topic_reader_shows_each_topic(db: Session) -> None:
    topics = {
        "attention": "sparse attention transformers attention heads attention",
        "galaxies": "galaxy clusters redshift",
        "proteins": "protein folding",
    }
    papers = []
    for name, words in topics.items():
        for i in range(8):
            paper = Paper(key=f"title:{name}{i}", title=f"{words} {i}", abstract=f"{words} study number {i}")
            papers.append(paper)
    keywords = {"attention": "attention, sparse attention", "galaxies": "galaxy", "proteins": "protein"}
    items = ranked(db, papers, keywords, Settings(_env_file=None, semantic=False))
    assert {item.interest for item in items[:3]} == set(topics)


def test_mixed_readers_follow_three_disjoint_topics(tmp_path: Path) -> None:
    dataset = load_dataset(write_set(tmp_path / "set", per_topic=10))
    groups = mixed_readers(dataset.profiles)
    assert len(groups) == 4  # 12 profiles on 6 topics: two profiles per topic never share a group
    for group in groups:
        assert len(group) == 3
        assert all(not (a.relevant & b.relevant) for a, b in itertools.combinations(group, 2))
    report = evaluate(dataset, methods=("paperboy",))
    by_score, shared = report.mixed
    assert (by_score.order, shared.order) == ("by score", "shared places")
    assert shared.coverage_at_10 >= by_score.coverage_at_10 and shared.readers == 4
    assert "interest coverage@10" in format_table(report)


def test_with_the_embedding_a_digest_gives_places_in_turns(db: Session) -> None:
    if not semantic_available():
        pytest.skip("the [semantic] extra is not installed")
    # Distinct papers (near-copies would be shown once): ten on attention, four on each other topic.
    topics = {
        "attention": [
            "Sparse attention cuts the cost of long-context transformers",
            "Block-sparse attention kernels for GPUs",
            "Learned sparsity patterns in self-attention heads",
            "Sliding-window attention for document summarisation",
            "Sparse attention with locality-sensitive hashing",
            "Routing attention: clustering queries and keys",
            "Attention sinks and sparse caches for streaming language models",
            "Dilated sparse attention for genomic sequences",
            "Top-k sparse attention in vision transformers",
            "A survey of efficient sparse attention mechanisms",
        ],
        "galaxies": [
            "Galaxy clusters at high redshift from X-ray surveys",
            "Weak lensing masses of galaxy clusters",
            "Intracluster light in nearby galaxy clusters",
            "The Sunyaev-Zeldovich effect in massive galaxy clusters",
        ],
        "proteins": [
            "Protein folding pathways from molecular dynamics",
            "Predicting protein folding stability with graph networks",
            "Chaperones and misfolded protein aggregation",
            "Cotranslational protein folding on the ribosome",
        ],
    }
    papers = [
        Paper(key=f"title:{name}{i}", title=title, abstract=f"{title}. We report new results.")
        for name, titles in topics.items()
        for i, title in enumerate(titles)
    ]
    keywords = {"attention": "sparse attention", "galaxies": "galaxy clusters", "proteins": "protein folding"}
    # Every match, not only the strong few the cut-off keeps.
    items = ranked(db, papers, keywords, Settings(_env_file=None, semantic=True, digest_cutoff=False))

    def turns(semantic: bool) -> list[str]:
        ordered = allocate(items, lambda item: item.interest, lambda item: item.score, semantic=semantic)
        return [item.interest for item in ordered]

    shown = [item.interest for item in items]
    assert shown == turns(semantic=True) and shown != turns(semantic=False)
    assert sorted(shown[:6]) == sorted(list(topics) * 2)  # two turns: each topic twice
