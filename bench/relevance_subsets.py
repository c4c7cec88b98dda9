"""A labelled set the ranking has never been looked at on: a random subset of the dev papers, fresh seeds.

Takes N random papers of ``../shared/eval/dev`` and, for every primary category with at least
``--min-papers`` of them, one profile: the category's keywords (as the dev profiles write them),
5 seed papers drawn at random from the subset, every other paper of the category relevant.
Writes papers.jsonl and profiles.jsonl to OUT; then run ``paperboy eval relevance OUT``.
Run: ``python bench/relevance_subsets.py OUT [--papers 1000 --seed 1]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"


def draw_subset(dev: Path, papers: int, seed: int, min_papers: int = 12) -> tuple[list[dict], list[dict]]:
    """The subset's papers and its profiles (one per primary category with ``min_papers`` papers)."""
    rng = random.Random(seed)
    everything = [json.loads(line) for line in (dev / "papers.jsonl").open(encoding="utf-8") if line.strip()]
    keywords = {}
    for line in (dev / "profiles.jsonl").open(encoding="utf-8"):
        if line.strip():
            profile = json.loads(line)
            keywords.setdefault(profile["category"], profile["keywords"])
    chosen = sorted(rng.sample(range(len(everything)), min(papers, len(everything))))
    subset = [everything[i] for i in chosen]
    by_category: dict[str, list[str]] = defaultdict(list)
    for paper in subset:
        if paper.get("categories"):
            by_category[paper["categories"][0]].append(paper["id"])
    profiles = []
    for category, ids in sorted(by_category.items()):
        if len(ids) < min_papers or category not in keywords:
            continue
        seeds = rng.sample(ids, 5)
        relevant = [i for i in ids if i not in seeds]
        profiles.append(
            {
                "id": f"{category}#s{seed}",
                "keywords": keywords[category],
                "seeds": seeds,
                "relevant": relevant,
            }
        )
    return subset, profiles


def write_subset(out: Path, papers: list[dict], profiles: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "papers.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(p) + "\n" for p in papers)
    with (out / "profiles.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(p) + "\n" for p in profiles)


def drawn_subsets(dev: Path, specs: Sequence[str]) -> Iterator[tuple[int, int, Path]]:
    """Each ``PAPERS:SEED`` spec drawn into a folder of its own, one at a time, as (papers, seed, folder);
    the folders are temporary, removed once the loop is done."""
    with tempfile.TemporaryDirectory() as scratch:
        for spec in specs:
            papers, seed = (int(part) for part in spec.split(":"))
            folder = Path(scratch) / f"{papers}-seed{seed}"
            write_subset(folder, *draw_subset(dev, papers, seed))
            yield papers, seed, folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-papers", type=int, default=12)
    args = parser.parse_args()
    subset, profiles = draw_subset(args.dev, args.papers, args.seed, args.min_papers)
    write_subset(args.out, subset, profiles)
    print(f"{args.out}: {len(subset)} papers, {len(profiles)} profiles")


if __name__ == "__main__":
    main()
