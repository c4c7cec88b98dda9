"""Matching at scale: 100,000 synthetic profiles x 5,000 synthetic papers, lexical path.

Prints profile x paper pairs resolved per second and wall times, measures the semantic
path's cost (papers embedded per second, one batch matrix product), and writes
bench/results/match.json. Run: ``python bench/match_bench.py [--profiles N --papers M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np

from service.matching.analysis import STOP_WORDS
from service.matching.documents import PaperDoc, analyze_paper
from service.matching.interests import Interest, compile_interest
from service.matching.percolator import ProfileIndex, percolate

RESULTS = Path(__file__).parent / "results" / "match.json"
SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ar", "en", "on")]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in STOP_WORDS and len(word) >= 4:
            words.add(word)
    return sorted(words)


def make_papers(rng: random.Random, n: int, topics: list[list[str]], common: list[str]) -> list[PaperDoc]:
    """Each paper mixes one topic's words with Zipf-distributed common words."""
    weights = [1.0 / (i + 1) for i in range(len(common))]
    papers = []
    for i in range(n):
        topic = topics[rng.randrange(len(topics))]

        def sentence(length: int, topic: list[str] = topic) -> str:
            words = [
                rng.choice(topic) if rng.random() < 0.3 else rng.choices(common, weights)[0]
                for _ in range(length)
            ]
            return " ".join(words)

        title = sentence(rng.randint(6, 12)).capitalize()
        abstract = ". ".join(sentence(rng.randint(12, 25)) for _ in range(rng.randint(5, 9))) + "."
        authors = [f"{rng.choice(common).capitalize()} {rng.choice(common).capitalize()}" for _ in range(3)]
        papers.append(PaperDoc(f"synthetic:{i}", title, abstract, authors))
    return papers


def make_interests(rng: random.Random, n: int, topics: list[list[str]]) -> list[tuple[str, Interest]]:
    """Keywords from one topic; some with a boolean query, a phrase, a prefix or exclusions."""
    interests = []
    for i in range(n):
        topic = topics[rng.randrange(len(topics))]
        keywords = []
        for _ in range(rng.randint(1, 3)):
            words = rng.sample(topic, rng.randint(1, 2))
            kind = rng.random()
            if kind < 0.1 and len(words) == 2:
                keywords.append(f'"{" ".join(words)}"^2')
            elif kind < 0.15:
                keywords.append(words[0][:4] + "*")
            else:
                keywords.append(" ".join(words))
        query = ""
        if rng.random() < 0.2:
            a, b, c = rng.sample(topic, 3)
            query = rng.choice([f"{a} OR {b}", f"title:{a} OR {b} AND NOT {c}", f"({a} OR {b}) AND {c}"])
        exclude = [rng.choice(topic)] if rng.random() < 0.1 else []
        interests.append((f"interest:{i}", Interest(f"i{i}", ", ".join(keywords), query, exclude)))
    return interests


def semantic_cost(papers: list[PaperDoc], profiles: int) -> dict[str, object]:
    from service.matching.semantic import MiniLMEmbedder, embed_papers, semantic_available

    if not semantic_available():
        return {"available": False}
    embedder = MiniLMEmbedder()
    sample = papers[:200]
    started = time.perf_counter()
    embed_papers(sample, embedder)
    per_second = len(sample) / (time.perf_counter() - started)
    rng = np.random.default_rng(0)
    paper_vectors = rng.standard_normal((len(papers), embedder.dimension)).astype(np.float32)
    profile_vectors = rng.standard_normal((profiles, embedder.dimension)).astype(np.float32)
    started = time.perf_counter()
    kept = 0
    for start in range(0, len(papers), 500):  # blocks keep the product at 200 MB
        block = paper_vectors[start : start + 500] @ profile_vectors.T
        kept += int((block > 3.0 * np.sqrt(embedder.dimension)).sum())
    product = time.perf_counter() - started
    return {
        "available": True,
        "papers_embedded_per_s": round(per_second, 1),
        "embed_5000_papers_s": round(len(papers) / per_second, 1),
        "matrix_product_s": round(product, 2),
        "matrix_pairs_per_s": round(len(papers) * profiles / product),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--no-semantic", action="store_true")
    args = parser.parse_args()
    rng = random.Random(42)
    words = vocabulary(rng, 12_000)
    common, rest = words[:2_000], words[2_000:]
    topics = [rest[i : i + 50] for i in range(0, len(rest), 50)]
    papers = make_papers(rng, args.papers, topics, common)
    interests = make_interests(rng, args.profiles, topics)

    started = time.perf_counter()
    index = ProfileIndex((pid, compile_interest(i)) for pid, i in interests)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    analysed = [analyze_paper(p) for p in papers]
    analyse_s = time.perf_counter() - started
    started = time.perf_counter()
    result = percolate(index, analysed)
    percolate_s = time.perf_counter() - started
    wall = analyse_s + percolate_s
    pairs = args.profiles * args.papers
    figures = {
        "profiles": args.profiles,
        "papers": args.papers,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "profile_index_build_s": round(index_s, 2),
        "analyse_papers_s": round(analyse_s, 2),
        "percolate_s": round(percolate_s, 2),
        "wall_s_per_batch": round(wall, 2),
        "wall_s_including_index_build": round(wall + index_s, 2),
        "pairs_resolved_per_s": round(pairs / wall),
        "candidate_pairs": int(result.candidate_pairs),
        "matched_pairs": len(result.scores),
        "semantic": {"skipped": True} if args.no_semantic else semantic_cost(papers, args.profiles),
    }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
