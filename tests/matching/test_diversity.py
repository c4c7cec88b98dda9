"""Places shared across a reader's interests, and the coverage measure."""

from __future__ import annotations

import itertools
from pathlib import Path

from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.rank import rank_papers
from service.matching.diversity import allocate, interest_coverage
from service.matching.evaluation import evaluate, format_table, load_dataset
from service.matching.mixed_readers import mixed_readers
from service.models import Interest, Paper, Profile
from tests.matching.test_eval import write_set


def test_every_interest_gets_its_best_paper_near_the_top() -> None:
    # (interest, score): topic a scores far above b and c.
    items = [("a", 5.0), ("a", 4.8), ("a", 4.6), ("a", 4.4), ("b", 1.0), ("b", 0.9), ("c", 0.5)]
    by_score = sorted(items, key=lambda item: -item[1])
    ordered = allocate(items, lambda item: item[0], lambda item: item[1])
    assert {name for name, _ in by_score[:3]} == {"a"}
    assert [name for name, _ in ordered[:3]] == ["a", "b", "c"]  # each interest's best, best first
    assert sorted(ordered) == sorted(items)  # nothing lost or repeated
    # A strong interest still takes more of the remaining places than a weak one.
    assert [name for name, _ in ordered[3:6]] == ["a", "a", "a"]


def test_penalty_shares_places_between_close_interests() -> None:
    items = [("a", 2.0 - i * 0.01) for i in range(5)] + [("b", 1.9 - i * 0.01) for i in range(5)]
    ordered = allocate(items, lambda item: item[0], lambda item: item[1], penalty=0.5)
    assert [name for name, _ in ordered[:6]] == ["a", "b", "a", "b", "a", "b"]
    plain = allocate(items, lambda item: item[0], lambda item: item[1], penalty=0.0)
    assert [name for name, _ in plain[2:6]] == ["a", "a", "a", "a"]


def test_interest_coverage() -> None:
    assert interest_coverage([{"a"}, {"a"}, set()], ["a", "b", "c"]) == 1 / 3
    assert interest_coverage([{"a", "b"}, {"c"}], ["a", "b", "c"]) == 1.0
    assert interest_coverage([], []) == 0.0


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
    db.add_all(papers)
    profile = Profile(
        name="ada",
        interests=[
            Interest(name="attention", keywords="attention, sparse attention"),
            Interest(name="galaxies", keywords="galaxy"),
            Interest(name="proteins", keywords="protein"),
        ],
    )
    db.add(profile)
    db.flush()
    items = rank_papers(db, profile, papers, settings=Settings(_env_file=None, semantic=False))
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
