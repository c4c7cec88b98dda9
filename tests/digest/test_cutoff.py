"""A digest holds only papers worth reading: no padding to max_papers with one-common-word matches."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.cutoff import cut_off
from service.digest.rank import rank_papers
from service.matching.explain import Explanation, KeywordEvidence
from service.matching.ranking import Match
from service.models import Interest, Paper, Profile
from tests.cli import run_cli

RLHF = "reinforcement learning from human feedback"


def _match(paper_id: str, score: float, words: tuple[str, ...] = (), whole: bool = False, **signals: float):
    evidence = [KeywordEvidence(RLHF, words, 4, whole)]
    return Match(paper_id, score, 1, Explanation(keywords=evidence, signals=signals))


def test_one_common_word_of_a_keyword_is_not_enough() -> None:
    matches = [
        _match("whole", 5.0, ("reinforcement", "learning", "human", "feedback"), whole=True),
        _match("half", 4.0, ("reinforcement", "learning")),
        _match("human", 3.5, ("human",)),
        _match("close", 3.0, ("learning",), keywords_semantic=0.45),
        _match("far", 3.0, ("learning",), keywords_semantic=0.25),
    ]
    assert [m.paper_id for m in cut_off(matches, seeded=False)] == ["whole", "half", "close"]


def test_papers_far_below_the_best_are_left_out_unless_they_hold_a_keyword() -> None:
    matches = [
        _match("best", 6.0, ("reinforcement", "learning", "human")),
        _match("weak", 2.9, ("reinforcement", "learning", "human")),
        _match("phrase", 1.0, ("reinforcement", "learning", "human", "feedback"), whole=True),
    ]
    assert [m.paper_id for m in cut_off(matches, seeded=False)] == ["best", "phrase"]
    # Seeded interests: closeness to the seeds is their evidence, only the relative rule applies.
    seeded = [
        Match("a", 4.0, 1, Explanation()),
        Match("b", 2.5, 2, Explanation()),
        Match("c", 1.9, 3, Explanation()),
    ]
    assert [m.paper_id for m in cut_off(seeded, seeded=True)] == ["a", "b"]
    # A query-only interest has no keywords to weigh: its query decided.
    assert [m.paper_id for m in cut_off(seeded[:2], seeded=False)] == ["a", "b"]


def _paper(db: Session, n: int, title: str, abstract: str) -> Paper:
    paper = Paper(key=f"title:{n}", title=title, abstract=abstract, authors=["A. Author"])
    db.add(paper)
    return paper


def test_an_rlhf_digest_is_not_padded_with_single_word_matches(db: Session) -> None:
    papers = [
        _paper(
            db,
            0,
            "Reinforcement learning from human feedback for chat models",
            "We align chat models with reinforcement learning from human feedback and a reward model.",
        ),
        *(
            _paper(db, n, f"{topic} study {n}", f"A {word} benchmark for {topic.lower()} tasks.")
            for n, (topic, word) in enumerate(
                [
                    ("Protein folding", "learning"),
                    ("Gait analysis", "human"),
                    ("Crop yield", "learning"),
                    ("Speech rates", "human"),
                    ("Traffic flows", "feedback"),
                    ("Soil moisture", "learning"),
                    ("Ocean waves", "human"),
                ],
                start=1,
            )
        ),
        *(_paper(db, n, f"Unrelated paper {n}", "Galaxies and dark matter halos.") for n in range(8, 20)),
    ]
    db.add(Profile(name="rl", interests=[Interest(name="rlhf", keywords=RLHF)]))
    db.flush()
    profile = db.query(Profile).filter_by(name="rl").one()
    lexical = Settings(_env_file=None, semantic=False)  # type: ignore[call-arg]
    padded = rank_papers(db, profile, papers, settings=lexical.model_copy(update={"digest_cutoff": False}))
    assert len(padded) == 8  # the RLHF paper and seven that share one common word with it
    items = rank_papers(db, profile, papers, settings=lexical)
    assert [i.title for i in items] == [papers[0].title]
    assert items[0].why == f"matches “{RLHF}”; for your interest “rlhf”"


def _write_set(directory: Path) -> None:
    papers = (
        [
            {"id": f"r{n}", "title": f"Sparse attention kernels {n}", "abstract": "Sparse attention on GPUs."}
            for n in range(3)
        ]
        + [
            {"id": f"o{n}", "title": f"Attention in classrooms {n}", "abstract": "Pupils' attention spans."}
            for n in range(8)
        ]
        + [{"id": f"g{n}", "title": f"Galaxies {n}", "abstract": "Dark matter halos."} for n in range(30)]
    )
    profile = {"id": "sa", "keywords": "sparse attention", "seeds": [], "relevant": ["r0", "r1", "r2"]}
    (directory / "papers.jsonl").write_text("\n".join(json.dumps(p) for p in papers) + "\n")
    (directory / "profiles.jsonl").write_text(json.dumps(profile) + "\n")


def test_eval_digests_reports_sent_precision_and_empty_digests(tmp_path: Path) -> None:
    _write_set(tmp_path)
    out = tmp_path / "digests.json"
    code, text = run_cli("eval", "digests", str(tmp_path), "--lexical-only", "--json", str(out))
    assert code == 0, text
    assert "no cut-off" in text and "cut-off" in text
    figures = {f["rule"]: f for f in json.loads(out.read_text())["figures"] if f["kind"] == "keywords"}
    assert figures["no cut-off"]["sent"] == 10 and figures["no cut-off"]["relevant_sent"] == 3
    assert figures["cut-off"]["sent"] == 3 and figures["cut-off"]["precision"] == 1.0
    assert figures["cut-off"]["empty_share"] == 0.0
