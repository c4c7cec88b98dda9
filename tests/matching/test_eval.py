"""`paperboy eval relevance`: metrics, a generated set, the CLI, and the real dev set."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.matching.evaluation import (
    DatasetError,
    evaluate,
    format_table,
    load_dataset,
    ndcg_at,
    precision_at,
    recall_at,
)
from service.matching.semantic import semantic_available
from tests.conftest import shared_path

TOPICS = {
    "astro": "galaxy star halo redshift cluster luminosity telescope supernova orbit stellar cosmic dust",
    "graphs": "graph vertex edge coloring clique matching planar tree degree bipartite chromatic path",
    "optics": "laser photon cavity beam lens waveguide refractive pulse fiber mirror optical wavelength",
    "bio": "protein gene cell enzyme membrane receptor sequence tissue mutation binding folding dna",
    "finance": "market price volatility option portfolio risk asset trading return hedge equity bond",
    "fluids": "turbulence viscosity flow vortex reynolds boundary shear navier laminar pressure jet wake",
}
FILLER = [
    "method",
    "result",
    "model",
    "approach",
    "analysis",
    "data",
    "new",
    "propose",
    "show",
    "study",
    "present",
    "effect",
    "using",
    "based",
    "two",
    "first",
    "high",
    "large",
    "small",
    "different",
    "case",
    "general",
    "problem",
    "system",
    "theory",
    "function",
    "results",
    "paper",
]


def write_set(directory: Path, seed: int = 7, per_topic: int = 30) -> Path:
    """A labelled set in the dev format: topics with their own words plus shared filler and noise."""
    rng = random.Random(seed)
    names = list(TOPICS)
    papers, members = [], {name: [] for name in names}
    for i in range(per_topic * len(names)):
        topic = names[i % len(names)]
        other = TOPICS[rng.choice(names)].split()
        own = TOPICS[topic].split()

        def words(n: int, own: list[str] = own, other: list[str] = other) -> str:
            pool = [rng.choice(own) if rng.random() < 0.3 else rng.choice(FILLER) for _ in range(n)]
            return " ".join(w if rng.random() > 0.1 else rng.choice(other) for w in pool)

        paper_id = f"gen:{i:04d}"
        members[topic].append(paper_id)
        papers.append({"id": paper_id, "title": words(8), "abstract": words(60), "authors": ["A. Writer"]})
    profiles = []
    for topic in names:
        for k in range(2):
            seeds = rng.sample(members[topic], 5)
            keywords = " ".join(rng.sample(TOPICS[topic].split(), 2))
            relevant = [p for p in members[topic] if p not in seeds]
            profiles.append(
                {"id": f"{topic}#{k}", "keywords": keywords, "seeds": seeds, "relevant": relevant}
            )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "papers.jsonl").write_text("".join(json.dumps(p) + "\n" for p in papers), encoding="utf-8")
    (directory / "profiles.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in profiles), encoding="utf-8"
    )
    return directory


def test_metrics_by_hand() -> None:
    relevant = frozenset({"a", "c", "e"})
    ranked = ["a", "b", "c", "d"]
    assert precision_at(ranked, relevant, k=2) == 0.5
    assert ndcg_at(ranked, relevant, k=3) == pytest.approx((1 + 1 / 2) / (1 + 1 / 1.5849625 + 1 / 2))
    assert recall_at(ranked, relevant, k=4) == pytest.approx(2 / 3)
    assert ndcg_at(["c", "a", "e"], relevant, k=3) == pytest.approx(1.0)


def test_generated_set_lexical(tmp_path: Path) -> None:
    report = evaluate(load_dataset(write_set(tmp_path / "set")))
    assert report.semantic is False and report.notes
    alert = report.get("keyword alert", "keywords")
    ours = report.get("paperboy", "keywords")
    assert alert is not None and ours is not None
    assert ours.ndcg_at_10 > alert.ndcg_at_10
    svm = report.get("TF-IDF + SVM", "seeds")
    assert svm is not None and report.get("TF-IDF + SVM", "keywords") is None  # SVM needs seeds
    for result in report.results:
        assert result.profiles == 12
        assert 0.0 <= result.precision_at_10 <= 1.0 and 0.0 <= result.recall_at_50 <= 1.0
    table = format_table(report)
    assert "paperboy" in table and "n/a" in table and "embedding cosine" not in table


def test_cli_prints_table_and_writes_json(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "set", per_topic=12)
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(
        app, ["eval", "relevance", str(directory), "--json", str(out), "--cache", str(tmp_path / "c.npz")]
    )
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.output and "keyword alert" in result.output
    figures = json.loads(out.read_text())
    assert figures["papers"] == 72 and {r["method"] for r in figures["results"]} >= {
        "paperboy",
        "keyword alert",
    }
    # With the [semantic] extra the zotero-arxiv-daily baseline runs too.
    assert ("embedding cosine" in result.output) == semantic_available()


@pytest.mark.parametrize(
    ("papers", "profiles", "message"),
    [
        ('{"id": "a", "title": "T"}\nnot json\n', "", "papers.jsonl:2: not JSON"),
        ('{"id": "a"}\n', "", "papers.jsonl:1: field 'title' must be a str"),
        (
            '{"id": "a", "title": "T"}\n{"id": "a", "title": "U"}\n',
            "",
            "papers.jsonl:2: duplicate paper id 'a'",
        ),
        (
            '{"id": "a", "title": "T"}\n',
            '{"id": "p", "keywords": "k", "seeds": ["zz"], "relevant": []}\n',
            "profiles.jsonl:1: field 'seeds' names unknown paper 'zz'",
        ),
        ('{"id": "a", "title": "T"}\n', '{"id": "p", "seeds": "a"}\n', "field 'seeds' must be a list"),
    ],
)
def test_bad_sets_name_file_line_and_field(tmp_path: Path, papers: str, profiles: str, message: str) -> None:
    (tmp_path / "papers.jsonl").write_text(papers, encoding="utf-8")
    (tmp_path / "profiles.jsonl").write_text(profiles, encoding="utf-8")
    with pytest.raises(DatasetError, match=message.replace("(", r"\(")):
        load_dataset(tmp_path)


def test_cli_rejects_a_bad_set_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "relevance", str(tmp_path)])
    assert result.exit_code == 2
    assert "papers.jsonl: file not found" in result.output


def test_dev_set_paperboy_beats_keyword_alerts() -> None:
    """The real, externally labelled set (lexical path, to stay quick; README has all figures)."""
    dataset = load_dataset(shared_path("eval", "dev"))
    report = evaluate(dataset, methods=("keyword alert", "paperboy"))
    for kind in ("keywords", "keywords+seeds"):
        ours, alert = report.get("paperboy", kind), report.get("keyword alert", kind)
        assert ours is not None and alert is not None
        assert ours.ndcg_at_10 > alert.ndcg_at_10 + 0.03, (kind, ours, alert)
    seeds = report.get("paperboy", "seeds")
    assert seeds is not None and seeds.ndcg_at_10 > 0.5


def test_missing_sklearn_skips_the_svm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    report = evaluate(load_dataset(write_set(tmp_path / "set", per_topic=8)))
    assert report.get("TF-IDF + SVM", "seeds") is None
    assert any("scikit-learn is not installed" in note for note in report.notes)
    assert report.get("paperboy", "seeds") is not None


def test_keyword_baselines_bm25_and_zsum(tmp_path: Path) -> None:
    from service.matching.baselines import OkapiBM25, zsum
    from service.matching.documents import PaperDoc

    papers = [
        PaperDoc("a", "Graph coloring bounds", "chromatic number of graphs"),
        PaperDoc("b", "Laser cavities", "optical pulses in a fiber"),
        PaperDoc("c", "Coloring sparse graphs", "graph coloring with few colors, coloring again"),
    ]
    scores = OkapiBM25(papers).scores("graph coloring")
    assert scores[1] == 0.0 and scores[0] > 0 and scores[2] > 0
    fused = zsum(np.array([1.0, 2.0, 3.0]), np.array([30.0, 20.0, 10.0]), np.zeros(3))
    assert np.allclose(fused, 0.0)  # opposite signals cancel; a flat one adds nothing
    report = evaluate(load_dataset(write_set(tmp_path / "set", per_topic=10)), methods=("Okapi BM25",))
    bm25 = report.get("Okapi BM25", "keywords")
    assert bm25 is not None and bm25.ndcg_at_10 > 0.5
    assert report.get("Okapi BM25", "seeds") is None  # it reads only the keywords


def test_rounds_replay_learns_from_the_simulated_reader(tmp_path: Path) -> None:
    from service.matching.replay import format_rounds, replay

    dataset = load_dataset(write_set(tmp_path / "set", per_topic=30))
    report = replay(dataset, 3, kinds=("keywords",))
    assert report.rounds == 3 and not report.semantic
    for method in ("paperboy", "TF-IDF + SVM"):
        first, last = report.get(method, "keywords", 1), report.get(method, "keywords", 3)
        assert first is not None and last is not None
        assert last.ndcg_at_10 > first.ndcg_at_10  # clicks on the keywords' hits teach the topic
    table = format_rounds(report)
    assert "nDCG r3" in table and "paperboy" in table
    with pytest.raises(ValueError, match="rounds: must be between 1 and the set's 180 papers, not 0"):
        replay(dataset, 0)


def test_cli_rounds_mode(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "set", per_topic=8)
    out = tmp_path / "rounds.json"
    result = CliRunner().invoke(
        app, ["eval", "relevance", str(directory), "--lexical-only", "--rounds", "2", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "nDCG r2" in result.output
    too_many = CliRunner().invoke(
        app, ["eval", "relevance", str(directory), "--lexical-only", "--rounds", "99"]
    )
    assert (
        too_many.exit_code == 2 and "--rounds: must be between 1 and the set's 48 papers" in too_many.output
    )
    figures = json.loads(out.read_text())
    assert figures["rounds"] == 2 and {r["round"] for r in figures["results"]} == {1, 2}


def test_cli_runs_only_the_methods_asked_for(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "set", per_topic=8)
    out = tmp_path / "rounds.json"
    only = ["--method", "paperboy", "--json", str(out)]
    result = CliRunner().invoke(
        app, ["eval", "relevance", str(directory), "--lexical-only", "--rounds", "2", *only]
    )
    assert result.exit_code == 0, result.output
    assert {r["method"] for r in json.loads(out.read_text())["results"]} == {"paperboy"}
    wrong = CliRunner().invoke(
        app, ["eval", "relevance", str(directory), "--lexical-only", "--method", "paperbot"]
    )
    assert wrong.exit_code == 2 and "--method: unknown method 'paperbot'" in wrong.output


def test_rounds_replay_gives_the_same_figures_whatever_the_hash_seed(tmp_path: Path) -> None:
    """Deterministic for a given history: two processes with different string hash seeds replay the
    dev set to the same figures (the reference papers were read in a set's order, which moved float
    sums and, through them, which papers the simulated reader marked)."""
    figures = []
    for seed in ("1", "2"):
        out = tmp_path / f"rounds-{seed}.json"
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "paperboy"),
                "eval",
                "relevance",
                str(shared_path("eval", "dev")),
                "--lexical-only",
                "--rounds",
                "3",
                "--method",
                "paperboy",
                "--json",
                str(out),
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        figures.append(json.loads(out.read_text())["results"])
    assert figures[0] == figures[1] and len(figures[0]) == 9
