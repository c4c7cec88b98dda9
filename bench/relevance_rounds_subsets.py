"""Learning over time on fresh-seed dev subsets: the rounds replay of ``paperboy eval relevance --rounds``,
pooled over several subsets the ranking was never chosen on.

Each ``--subset PAPERS:SEED`` is drawn with bench/relevance_subsets.py and replayed as N days
(service/matching/replay.py): paperboy and the baselines get the same simulated reader's marks. Per method,
kind and round, nDCG@10 is pooled over the subsets' profiles (weighted by the profiles counted in that round),
then round N is compared with round 1. Writes bench/results/relevance-rounds-subsets.json (or ``--json``).
Run: ``python bench/relevance_rounds_subsets.py --subset 1000:301 --subset 1200:302 [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from relevance_subsets import DEV, drawn_subsets  # noqa: E402

from service.matching.evaluation import KINDS, load_dataset  # noqa: E402
from service.matching.replay import REPLAY_METHODS, ReplayReport, replay  # noqa: E402
from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "relevance-rounds-subsets.json"


def pooled(reports: list[ReplayReport], rounds: int) -> dict[str, dict[str, list[float | None]]]:
    """Per method and kind, the profile-weighted mean nDCG@10 of each round over all reports."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for method in REPLAY_METHODS:
        for kind in KINDS:
            means: list[float | None] = []
            for number in range(1, rounds + 1):
                cells = [c for r in reports if (c := r.get(method, kind, number)) is not None]
                profiles = sum(c.profiles for c in cells)
                means.append(sum(c.ndcg_at_10 * c.profiles for c in cells) / profiles if profiles else None)
            if any(m is not None for m in means):
                out.setdefault(method, {})[kind] = means
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subset", action="append", default=[], help="PAPERS:SEED, e.g. 1000:301 (repeat)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "eval-embeddings.npz")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    specs = args.subset or ["1000:301", "1200:302"]
    embedder = MiniLMEmbedder()
    cache = NpzEmbeddingCache(args.cache)
    reports: list[ReplayReport] = []
    started = time.process_time()
    for papers, seed, folder in drawn_subsets(args.dev, specs):
        reports.append(replay(load_dataset(folder), args.rounds, embedder=embedder, cache=cache))
        print(f"{papers} papers, seed {seed}: replayed", flush=True)
    table = pooled(reports, args.rounds)
    for kind in KINDS:
        for method, kinds in table.items():
            means = kinds.get(kind)
            if not means:
                continue
            cells = " ".join(f"{m:.3f}" if m is not None else "  n/a" for m in means)
            first, last = means[0], means[-1]
            gain = f"{last / first - 1:+.1%}" if first and last else "n/a"
            print(f"{kind:<15} {method:<19} {cells}  r{args.rounds}/r1 {gain}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "subsets": specs,
        "rounds": args.rounds,
        "ndcg_at_10": table,
        "cpu_seconds": time.process_time() - started,
        "machine": platform.platform(),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
