"""The vector screen at scale: 100,000 interest vectors against a batch of 5,000 paper vectors.

Exact, blocked cosine (service.matching.vector_screen) on clustered synthetic unit vectors in
MiniLM's 384 dimensions, so that a realistic share of pairs reaches the 0.29 floor. Also times
MiniLM on short keyword texts (what building the stored interest vectors costs once) when the
[semantic] extra is installed. Writes bench/results/vector_screen.json.
Run: ``python bench/vector_screen_bench.py [--interests N --papers M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from service.matching.semantic import semantic_available
from service.matching.vector_screen import VectorScreen

RESULTS = Path(__file__).parent / "results" / "vector_screen.json"


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray, spread: float) -> np.ndarray:
    vectors = centres[rng.integers(0, len(centres), n)] + spread * rng.standard_normal((n, centres.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interests", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=5_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((300, 384))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    interests = clustered(rng, args.interests, centres, 0.06)
    papers = clustered(rng, args.papers, centres, 0.06)
    screen = VectorScreen(list(range(args.interests)), interests)
    started = time.perf_counter()
    wanted = screen.wanted(papers)
    reach_s = time.perf_counter() - started
    started = time.perf_counter()
    owners, _ = screen.hits(papers)
    hits_s = time.perf_counter() - started
    figures: dict[str, object] = {
        "interests": args.interests,
        "papers": args.papers,
        "dimensions": 384,
        "interests_reached": len(wanted),
        "pairs_reached": len(owners),
        "reach_seconds": round(reach_s, 2),
        "hits_seconds": round(hits_s, 2),
        "pairs_per_second": round(args.interests * args.papers / reach_s),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
    }
    if semantic_available():
        from service.matching.semantic import MiniLMEmbedder

        embedder = MiniLMEmbedder()
        texts = [f"topic {i} methods, learning {i % 17}" for i in range(300)]
        embedder.embed(texts[:8])
        started = time.perf_counter()
        embedder.embed(texts)
        figures["keyword_texts_embedded_per_second"] = round(len(texts) / (time.perf_counter() - started))
    for key, value in figures.items():
        print(f"{key}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
