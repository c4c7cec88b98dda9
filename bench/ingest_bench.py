"""Ingest benchmark: parse and store rates for 100,000-paper synthetic dumps in every format.

    python bench/ingest_bench.py [--papers 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

Writes bench/results/ingest.json and prints the figures. PostgreSQL runs in a scratch database
(`paperboy_bench_ingest`) created and dropped here; pass --pg '' to skip it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.db import make_engine  # noqa: E402
from service.ingest.parsers import parse  # noqa: E402
from service.ingest.reading import read_text_lines  # noqa: E402
from service.ingest.records import FORMATS, PaperRecord  # noqa: E402
from service.ingest.runs import ingest_file  # noqa: E402
from service.ingest.store import PaperStore  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import utcnow  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"
SCRATCH_DB = "paperboy_bench_ingest"
WORDS = [
    "model",
    "models",
    "learning",
    "neural",
    "network",
    "attention",
    "sparse",
    "dense",
    "training",
    "inference",
    "memory",
    "efficient",
    "transformer",
    "language",
    "vision",
    "diffusion",
    "graph",
    "benchmark",
    "dataset",
    "method",
    "results",
    "performance",
    "large",
    "small",
    "fast",
    "robust",
    "scalable",
    "optimisation",
    "gradient",
    "token",
    "context",
    "retrieval",
    "reasoning",
    "agent",
    "policy",
    "reward",
    "latent",
    "representation",
    "embedding",
    "kernel",
    "hardware",
    "accuracy",
    "baseline",
    "state",
    "art",
    "propose",
    "show",
]
TODAY = dt.date(2026, 11, 23)


# --- synthetic dumps -----------------------------------------------------------------------------


def synthetic_papers(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    papers = []
    for i in range(count):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + f" {i}"
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 25))).capitalize() + "."
            for _ in range(rng.randint(6, 10))
        ]
        if i % 4 == 0:
            sentences.append(f"Code is at https://github.com/lab{i % 97}/repo{i}.")
        papers.append(
            {
                "title": title,
                "abstract": " ".join(sentences),
                "arxiv_id": f"{2300 + i // 100000:04d}.{i % 100000:05d}",
                "authors": [f"Author {i}-{k}" for k in range(rng.randint(1, 8))],
                "upvotes": rng.randint(0, 300),
                "published": dt.date(2024, 1, 1) + dt.timedelta(days=i % 700),
            }
        )
    return papers


def write_dump(fmt: str, papers: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        if fmt == "listing":
            out.write("Get trending papers in your email inbox once a day!\n")
            out.write("Get trending papers in your email inbox!\nSubscribe")
            for p in papers:
                out.write(f"{p['title']}\n{p['abstract']}\n")
        elif fmt == "daily_page":
            out.write("new\n\nDaily Papers\n\nbyAK and the research community\n\nMar 16\n\n")
            for p in papers:
                day = p["published"]
                out.write(f"{p['title']}\n\n{p['abstract']}\n\n  • {len(p['authors'])} authors\n·\n")
                out.write(f"{day:%b} {day.day}, {day.year} {p['upvotes']}\n\n")
        elif fmt == "jsonl":
            for p in papers:
                obj = {k: v for k, v in p.items() if k != "published"}
                obj["published_on"] = p["published"].isoformat()
                out.write(json.dumps(obj) + "\n")
        elif fmt == "atom":
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n')
            for p in papers:
                authors = "".join(f"<author><name>{a}</name></author>" for a in p["authors"])
                out.write(
                    f"<entry><id>http://arxiv.org/abs/{p['arxiv_id']}v1</id>"
                    f"<published>{p['published']}T00:00:00Z</published><title>{p['title']}</title>"
                    f"<summary>{p['abstract']}</summary>{authors}</entry>\n"
                )
            out.write("</feed>\n")
        elif fmt == "hf_api":
            out.write("[")
            for i, p in enumerate(papers):
                item = {
                    "paper": {
                        "id": p["arxiv_id"],
                        "title": p["title"],
                        "summary": p["abstract"],
                        "authors": [{"name": a} for a in p["authors"]],
                        "publishedAt": f"{p['published']}T00:00:00.000Z",
                        "upvotes": p["upvotes"],
                    },
                    "title": p["title"],
                }
                out.write(("," if i else "") + json.dumps(item))
            out.write("]")  # one line, as the API sends it


# --- measurements ----------------------------------------------------------------------------------


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(result, wall seconds, CPU seconds of this process) -- CPU time shows the rate on a busy host."""
    start, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return count, time.perf_counter() - start, time.process_time() - cpu


def parse_count(fmt: str, path: Path) -> int:
    return sum(1 for item in parse(fmt, read_text_lines(path), today=TODAY) if isinstance(item, PaperRecord))


def parse_peak_bytes(fmt: str, path: Path) -> int:
    tracemalloc.start()
    try:
        parse_count(fmt, path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def store_rates(url: str, jsonl: Path, papers: int) -> dict[str, Any]:
    """Bulk upsert of already-parsed records, then a whole `ingest_file` of the same dump again."""
    upgrade(url)
    engine = make_engine(url)
    records = [item for item in parse("jsonl", read_text_lines(jsonl)) if isinstance(item, PaperRecord)]
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM papers"))
            conn.execute(text("DELETE FROM ingest_runs"))
        from sqlalchemy.orm import Session

        start, cpu = time.perf_counter(), time.process_time()
        with Session(engine) as session, session.begin():
            store = PaperStore(session, "bench", utcnow())
            counts = store.add_all(records)
        store_s, store_cpu = time.perf_counter() - start, time.process_time() - cpu
        assert counts.new == papers, counts

        start = time.perf_counter()
        report = ingest_file(engine, jsonl, force=True)  # every paper again: lookups, nothing changes
        again_s = time.perf_counter() - start
        assert report.duplicate == papers, report

        with engine.begin() as conn:
            conn.execute(text("DELETE FROM papers"))
        start = time.perf_counter()
        report = ingest_file(engine, jsonl, force=True)  # read + parse + store, as `paperboy ingest`
        full_s = time.perf_counter() - start
        assert report.new == papers, report
    finally:
        engine.dispose()
    return {
        "store_new_papers_per_s": round(papers / store_s),
        "store_new_seconds": round(store_s, 2),
        "store_new_client_cpu_seconds": round(store_cpu, 2),
        "reingest_duplicates_papers_per_s": round(papers / again_s),
        "ingest_file_end_to_end_papers_per_s": round(papers / full_s),
    }


def postgres_scratch(server: str) -> tuple[str, Callable[[], None]]:
    admin = make_engine(f"{server}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{SCRATCH_DB}"'))

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
        admin.dispose()

    return f"{server}/{SCRATCH_DB}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    n = args.papers
    results: dict[str, Any] = {
        "papers": n,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measured_at": utcnow().isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "parse": {},
        "store": {},
    }
    with tempfile.TemporaryDirectory(prefix="paperboy-bench-") as tmp:
        folder = Path(tmp)
        papers = synthetic_papers(n)
        small = synthetic_papers(n // 10, seed=2)
        for fmt in FORMATS:
            path, small_path = folder / f"{fmt}.dump", folder / f"{fmt}.small.dump"
            write_dump(fmt, papers, path)
            write_dump(fmt, small, small_path)
            count, seconds, cpu = timed(lambda fmt=fmt, path=path: parse_count(fmt, path))
            assert count == n, (fmt, count)
            results["parse"][fmt] = {
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "papers_per_s": round(count / seconds),
                "papers_per_cpu_s": round(count / cpu),
                "mb_per_s": round(path.stat().st_size / 1e6 / seconds, 1),
                "peak_mb_traced": round(parse_peak_bytes(fmt, path) / 1e6, 2),
                "peak_mb_traced_at_10pct_size": round(parse_peak_bytes(fmt, small_path) / 1e6, 2),
            }
            print(f"parse {fmt:10} {results['parse'][fmt]}", flush=True)
        del papers, small
        jsonl = folder / "jsonl.dump"
        results["store"]["sqlite"] = store_rates(f"sqlite:///{folder / 'bench.db'}", jsonl, n)
        print(f"store sqlite     {results['store']['sqlite']}", flush=True)
        if args.pg:
            url, drop = postgres_scratch(args.pg)
            try:
                results["store"]["postgresql"] = store_rates(url, jsonl, n)
            finally:
                drop()
            print(f"store postgresql {results['store']['postgresql']}", flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
