"""Three-topic readers on the dev set and on fresh-seed dev subsets: nDCG@10 and interest coverage@10,
ranked by score and with the places shared across interests (service/matching/diversity.py).

The readers are `paperboy eval`'s (service/matching/mixed_readers.py): three keyword profiles with
disjoint relevant papers. One set gives a few dozen readers at most, so this pools every subset
``--subset PAPERS:SEED`` (drawn with bench/relevance_subsets.py, the whole subset as the pool) and
reports the dev set beside them. Writes bench/results/mixed-readers.json (or ``--json``).
Run: ``python bench/mixed_readers_subsets.py --subset 1000:301 --subset 1200:302 [--cache FILE]``.
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

from service.matching.evaluation import load_dataset  # noqa: E402
from service.matching.mixed_readers import MixedResult, score_mixed_readers  # noqa: E402
from service.matching.ranking import MatchContext  # noqa: E402
from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mixed-readers.json"


def measured(folder: Path, embedder: MiniLMEmbedder, cache: NpzEmbeddingCache) -> list[MixedResult]:
    dataset = load_dataset(folder)
    context = MatchContext(dataset.papers, embedder=embedder, cache=cache)
    return score_mixed_readers(dataset.profiles, context)


def pooled(results: list[list[MixedResult]]) -> dict[str, dict[str, float]]:
    """Per order, reader-weighted means over the sets."""
    out: dict[str, dict[str, float]] = {}
    for order in {r.order for rows in results for r in rows}:
        rows = [r for found in results for r in found if r.order == order]
        readers = sum(r.readers for r in rows)
        out[order] = {
            "readers": readers,
            "ndcg_at_10": sum(r.ndcg_at_10 * r.readers for r in rows) / readers,
            "coverage_at_10": sum(r.coverage_at_10 * r.readers for r in rows) / readers,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subset", action="append", default=[], help="PAPERS:SEED, e.g. 1000:301 (repeat)")
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "eval-embeddings.npz")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    specs = args.subset or ["1000:301", "1200:302"]
    embedder = MiniLMEmbedder()
    cache = NpzEmbeddingCache(args.cache)
    started = time.process_time()
    dev = measured(args.dev, embedder, cache)
    subsets = [measured(folder, embedder, cache) for _, _, folder in drawn_subsets(args.dev, specs)]
    table = {"dev": pooled([dev]), "subsets": pooled(subsets)}
    for name, orders in table.items():
        for order, row in sorted(orders.items()):
            print(
                f"{name:<8} {order:<14} readers {row['readers']:>4}  nDCG@10 {row['ndcg_at_10']:.3f}"
                f"  coverage@10 {row['coverage_at_10']:.3f}"
            )
    result: dict[str, Any] = {
        "subsets": specs,
        "three_topic_readers": table,
        "cpu_seconds": time.process_time() - started,
        "machine": platform.platform(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
