"""paperboy's lead over the best baseline on several fresh-seed dev subsets, one line each and pooled.

One 18-profile subset is a noisy judge (one profile moves a mean by 0.05): this draws each subset
``--subset PAPERS:SEED`` with bench/relevance_subsets.py, runs every method of ``paperboy eval
relevance`` on it, and reports per profile kind paperboy's nDCG@10, the best baseline's and the lead,
then the same pooled over every subset's profiles (means weighted by profiles). Writes
bench/results/relevance-leads.json (or ``--json``).
Run: ``python bench/relevance_leads.py --subset 1000:1 --subset 1200:2 [--cache FILE] [--lexical-only]``.
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

from service.matching.evaluation import KINDS, EvalReport, evaluate, load_dataset  # noqa: E402
from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache, semantic_available  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "relevance-leads.json"


def leads(report: EvalReport) -> dict[str, dict[str, Any]]:
    """Per kind: paperboy's nDCG@10, the best baseline (name and nDCG@10) and the number of profiles."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        ours = report.get("paperboy", kind)
        others = [r for r in report.results if r.kind == kind and r.method != "paperboy"]
        if ours is None or not others:
            continue
        best = max(others, key=lambda r: r.ndcg_at_10)
        out[kind] = {
            "profiles": ours.profiles,
            "paperboy": ours.ndcg_at_10,
            "baseline": best.method,
            "baseline_ndcg": best.ndcg_at_10,
            "lead": ours.ndcg_at_10 / best.ndcg_at_10 - 1.0 if best.ndcg_at_10 else None,
        }
    return out


def pooled(rows: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Profile-weighted means over the subsets (each subset's best baseline, as a reader would meet it)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        found = [row[kind] for row in rows if kind in row]
        total = sum(r["profiles"] for r in found)
        if not total:
            continue
        ours = sum(r["paperboy"] * r["profiles"] for r in found) / total
        theirs = sum(r["baseline_ndcg"] * r["profiles"] for r in found) / total
        lead = ours / theirs - 1.0
        out[kind] = {"profiles": total, "paperboy": ours, "baseline_ndcg": theirs, "lead": lead}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subset", action="append", default=[], help="PAPERS:SEED, e.g. 1000:1 (repeat)")
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "eval-embeddings.npz")
    parser.add_argument("--lexical-only", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    specs = args.subset or ["1000:1", "1200:2"]
    embedder = None if args.lexical_only or not semantic_available() else MiniLMEmbedder()
    cache = NpzEmbeddingCache(args.cache)
    rows: list[dict[str, Any]] = []
    started = time.process_time()
    for papers, seed, folder in drawn_subsets(args.dev, specs):
        report = evaluate(load_dataset(folder), embedder=embedder, cache=cache)
        row = leads(report)
        rows.append({"papers": papers, "seed": seed, "kinds": row})
        cells = "  ".join(
            f"{kind} {r['paperboy']:.3f} vs {r['baseline']} {r['baseline_ndcg']:.3f} ({r['lead']:+.0%})"
            for kind, r in row.items()
        )
        print(f"{papers} papers, seed {seed}: {cells}", flush=True)
    total = pooled([row["kinds"] for row in rows])
    print(
        "pooled: "
        + "  ".join(
            f"{kind} {r['paperboy']:.3f} vs {r['baseline_ndcg']:.3f} ({r['lead']:+.0%})"
            for kind, r in total.items()
        )
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "semantic": embedder is not None,
                "subsets": rows,
                "pooled": total,
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
