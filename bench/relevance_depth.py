"""How many papers the neighbour graph should trust, measured on sets the scored figures never saw.

The graph's pseudo-relevance feedback (service/matching/diffusion.py) spreads relevance from the
seeds plus the first ranking's best papers, 10 trusted in all and at least 3 guessed. On fresh-seed
subsets of 1,000-1,200 papers trusting fewer looked better, on the 2,000-paper dev set worse: a
depth that follows the pool (10 per 2,000 papers, i.e. n / 200) was the hypothesis. This ranks
each set with paperboy under each rule and prints nDCG@10 (and the lead over semantic search for
keywords, embedding cosine for seeds) for the profiles at even positions of each set, odd ones and
all: choose on the even ones, check on the odd ones. Nothing in ranking.py changes; the rule is
swapped in for the run only. Writes bench/results/relevance-depth.json (or ``--json``).
Run: ``python bench/relevance_depth.py --subset 1000:101 --subset 1200:102 [--set DIR] --cache FILE``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from relevance_subsets import DEV, drawn_subsets  # noqa: E402

from service.matching.baselines import EmbeddingCosine, SemanticSearch  # noqa: E402
from service.matching.diffusion import NeighbourGraph, best_rows  # noqa: E402
from service.matching.evaluation import load_dataset, ndcg_at, reader_interest  # noqa: E402
from service.matching.interests import compile_interest  # noqa: E402
from service.matching.ranking import MatchContext, score_pool  # noqa: E402
from service.matching.reader_model import Background  # noqa: E402
from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "relevance-depth.json"
KINDS = ("keywords", "seeds")
# name: (papers per trusted paper or None, fixed depth, guesses always made); "main" ships.
RULES: dict[str, tuple[int | None, int, int]] = {
    "main (10, 3 guesses)": (None, 10, 3),
    "5, no forced guess": (None, 5, 0),
    "n/200, no forced guess": (200, 0, 0),
    "n/200, 3 guesses": (200, 0, 3),
    "n/300, no forced guess": (300, 0, 0),
    "n/300, 3 guesses": (300, 0, 3),
    "n/400, no forced guess": (400, 0, 0),
}
_rule: dict[str, Any] = {"per": None, "fixed": 10, "guesses": 3}


def _feedback(
    self: NeighbourGraph, first: np.ndarray, allowed: np.ndarray, known: Sequence[int] = (), depth: int = 10
) -> np.ndarray:
    """NeighbourGraph.feedback with the trusted depth of the rule under test."""
    per = _rule["per"]
    trusted = _rule["fixed"] if per is None else min(10, max(1, round(len(first) / per)))
    seeds = np.zeros(self.size)
    top = best_rows(first, np.flatnonzero(allowed), max(trusted - len(set(known)), _rule["guesses"]))
    seeds[top] = 1.0
    seeds[list(known)] = 1.0
    return self._spread_of(np.flatnonzero(seeds)) if seeds.any() else seeds


def _top_ndcg(scores: np.ndarray, exclude: list[int], ids: list[str], relevant: frozenset[str]) -> float:
    ranked = np.asarray(scores, dtype=float).copy()
    ranked[exclude] = -np.inf
    return ndcg_at([ids[j] for j in np.argsort(-ranked, kind="stable")[:10]], relevant)


def measure(
    folder: Path, embedder: MiniLMEmbedder, cache: NpzEmbeddingCache
) -> dict[str, dict[str, list[float]]]:
    """Per rule (and per baseline) and kind, each profile's nDCG@10 in file order."""
    dataset = load_dataset(folder)
    context = MatchContext(dataset.papers, embedder=embedder, cache=cache)
    assert context.embeddings is not None
    background = Background.of(context.embeddings)
    ids = [p.id for p in dataset.papers]
    cosine = EmbeddingCosine(context.embeddings)
    search = SemanticSearch(context.embeddings, context.embed_text)
    out: dict[str, dict[str, list[float]]] = {"baseline": {kind: [] for kind in KINDS}}
    for profile in dataset.profiles:
        seeds = context.rows(profile.seeds)
        semantic = search.scores(profile.keywords)
        out["baseline"]["keywords"].append(_top_ndcg(semantic, seeds, ids, profile.relevant))
        out["baseline"]["seeds"].append(_top_ndcg(cosine.scores(seeds), seeds, ids, profile.relevant))
    interests = {
        kind: [compile_interest(reader_interest(p, kind, context, background)) for p in dataset.profiles]
        for kind in KINDS
    }
    original = NeighbourGraph.feedback
    NeighbourGraph.feedback = _feedback  # type: ignore[method-assign]
    try:
        for name, (per, fixed, guesses) in RULES.items():
            _rule.update(per=per, fixed=fixed, guesses=guesses)
            out[name] = {kind: [] for kind in KINDS}
            for kind in KINDS:
                for profile, interest in zip(dataset.profiles, interests[kind], strict=True):
                    ranking = score_pool(interest, context)
                    scores = np.where(ranking.allowed, ranking.scores, -np.inf)
                    out[name][kind].append(
                        _top_ndcg(scores, context.rows(profile.seeds), ids, profile.relevant)
                    )
    finally:
        NeighbourGraph.feedback = original  # type: ignore[method-assign]
    return out


def summary(sets: dict[str, dict[str, dict[str, list[float]]]]) -> dict[str, Any]:
    """Mean nDCG@10 per part (even, odd, all positions within each set), rule and kind."""
    parts: dict[str, Any] = {}
    for part, keep in (("even", 0), ("odd", 1), ("all", None)):
        parts[part] = {}
        for name in ["baseline", *RULES]:
            parts[part][name] = {}
            for kind in KINDS:
                per_set = (enumerate(r[name][kind]) for r in sets.values())
                values = [v for profiles in per_set for i, v in profiles if keep in (None, i % 2)]
                parts[part][name][kind] = float(np.mean(values))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subset", action="append", default=[], help="PAPERS:SEED, e.g. 1000:101 (repeat)")
    parser.add_argument("--set", action="append", default=[], type=Path, help="a labelled set (repeat)")
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "eval-embeddings.npz")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    cache = NpzEmbeddingCache(args.cache)
    started = time.process_time()
    sets: dict[str, dict[str, dict[str, list[float]]]] = {}
    for papers, seed, folder in drawn_subsets(args.dev, args.subset):
        sets[f"{papers}:{seed}"] = measure(folder, embedder, cache)
    for folder in args.set:
        sets[str(folder)] = measure(folder, embedder, cache)
    parts = summary(sets)
    for part, rows in parts.items():
        base = rows["baseline"]
        print(f"{part} positions (baseline: keywords {base['keywords']:.3f}, seeds {base['seeds']:.3f})")
        for name in RULES:
            cells = "  ".join(
                f"{kind} {rows[name][kind]:.3f} ({rows[name][kind] / base[kind] - 1:+.1%})" for kind in KINDS
            )
            print(f"  {name:24s} {cells}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "sets": list(sets),
                "rules": {name: list(rule) for name, rule in RULES.items()},
                "summary": parts,
                "cpu_seconds": time.process_time() - started,
                "machine": platform.platform(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
