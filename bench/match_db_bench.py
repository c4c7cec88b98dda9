"""Matching at scale with the profiles stored in a database: SQLite and PostgreSQL.

100,000 synthetic profiles (one interest each, the generator of match_bench.py) and 5,000 synthetic
papers are bulk-inserted into a fresh, migrated database; then, timed: load every stored interest
(service.matching.batch.load_interests, the code the dispatcher's batch screen uses) and the papers,
build the percolator's ProfileIndex, analyse and percolate the 5,000 papers. Also timed: the batch
screen (service.matching.batch.BatchScreen) over a day's worth of papers, and what ranking one
profile costs (rank_papers), i.e. what the screen saves for each profile it rules out.

Run: ``python bench/match_db_bench.py [--profiles N --papers M --backend sqlite|postgresql]``.
PostgreSQL: a scratch database on postgresql+psycopg://postgres@127.0.0.1:5432, dropped afterwards.
Writes bench/results/match_db.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import Engine, func, insert, select, text  # noqa: E402

from bench.match_bench import make_interests, make_papers, vocabulary  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import make_engine, session_scope  # noqa: E402
from service.digest.rank import paper_doc, rank_papers  # noqa: E402
from service.matching.batch import BatchScreen, load_interests  # noqa: E402
from service.matching.documents import analyze_paper  # noqa: E402
from service.matching.interests import compile_interest  # noqa: E402
from service.matching.percolator import ProfileIndex, percolate  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import Interest, Paper, Profile  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "match_db.json"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
CHUNK = 10_000  # rows per executemany: bounded memory, few round trips
DAY_BATCH = 500  # papers in one day's batch for the screen figures
RANK_SAMPLE = 10  # profiles ranked one by one to price a ranking
LEXICAL = Settings(_env_file=None, semantic=False)


def setup_data(profiles: int, papers: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(42)  # the same data as match_bench.py
    words = vocabulary(rng, 12_000)
    common, rest = words[:2_000], words[2_000:]
    topics = [rest[i : i + 50] for i in range(0, len(rest), 50)]
    return make_papers(rng, papers, topics, common), make_interests(rng, profiles, topics)


def bulk_insert(engine: Engine, docs: list[Any], interests: list[Any]) -> float:
    """Profiles, interests and papers by executemany in chunks; returns the seconds it took."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    stamps = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        for start in range(0, len(interests), CHUNK):
            chunk = list(enumerate(interests[start : start + CHUNK], start + 1))
            conn.execute(insert(Profile), [{"id": n, "name": f"reader-{n}", **stamps} for n, _ in chunk])
            conn.execute(
                insert(Interest),
                [
                    {
                        "profile_id": n,
                        "name": interest.name,
                        "keywords": interest.keywords,
                        "query": interest.query or None,
                        "exclude": ", ".join(interest.exclude),
                        "seeds": [],
                        **stamps,
                    }
                    for n, (_, interest) in chunk
                ],
            )
        for start in range(0, len(docs), CHUNK):
            conn.execute(
                insert(Paper),
                [
                    {
                        "key": f"synthetic:{n}",
                        "title": doc.title,
                        "abstract": doc.abstract,
                        "authors": list(doc.authors),
                        "first_seen_at": now,
                        "links": [],
                        **stamps,
                    }
                    for n, doc in enumerate(docs[start : start + CHUNK], start)
                ],
            )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def measure(engine: Engine, profiles: int) -> dict[str, Any]:
    with session_scope(engine) as session:
        started = time.perf_counter()
        stored = load_interests(session, LEXICAL)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        papers = list(session.scalars(select(Paper).order_by(Paper.id)))
        docs = [paper_doc(p) for p in papers]
        load_papers_s = time.perf_counter() - started
    assert len(stored) == profiles, (len(stored), profiles)
    started = time.perf_counter()
    index = ProfileIndex((str(s.interest_id), compile_interest(s.interest)) for s in stored)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    analysed = [analyze_paper(d) for d in docs]
    analyse_s = time.perf_counter() - started
    started = time.perf_counter()
    result = percolate(index, analysed)
    percolate_s = time.perf_counter() - started
    match_s = analyse_s + percolate_s
    wall = load_s + load_papers_s + index_s + match_s
    pairs = profiles * len(docs)
    return {
        "load_interests_s": round(load_s, 2),
        "load_papers_s": round(load_papers_s, 2),
        "index_build_s": round(index_s, 2),
        "analyse_papers_s": round(analyse_s, 2),
        "percolate_s": round(percolate_s, 2),
        "match_s": round(match_s, 2),
        "pairs_resolved_per_s_match": round(pairs / match_s),
        "wall_s": round(wall, 2),
        "pairs_resolved_per_s_wall": round(pairs / wall),
        "candidate_pairs": int(result.candidate_pairs),
        "matched_pairs": len(result.scores),
        "screen": measure_screen(engine, stored),
    }


def measure_screen(engine: Engine, stored: list[Any]) -> dict[str, Any]:
    """The dispatcher's batch screen over one day's papers, against the price of ranking a profile."""
    started = time.perf_counter()
    screen = BatchScreen(stored)
    build_s = time.perf_counter() - started
    with session_scope(engine) as session:
        batch = list(session.scalars(select(Paper).order_by(Paper.id).limit(DAY_BATCH)))
        started = time.perf_counter()
        screen.screen(batch)
        screen_s = time.perf_counter() - started
        rng = random.Random(7)
        sample_ids = rng.sample(range(1, len(stored) + 1), RANK_SAMPLE)
        sample = list(session.scalars(select(Profile).where(Profile.id.in_(sample_ids))))
        started = time.perf_counter()
        for profile in sample:
            rank_papers(session, profile, batch, settings=LEXICAL)
        rank_s = (time.perf_counter() - started) / len(sample)
        started = time.perf_counter()
        kept = sum(screen.may_match(p, batch, None) for p in sample)
        check_s = (time.perf_counter() - started) / len(sample)
    # One interest per profile here, so the profiles kept are the interests kept.
    ruled_out = len(stored) - len(screen.wanted_interests(np.array([p.id for p in batch])))
    return {
        "batch_papers": len(batch),
        "screen_build_s": round(build_s, 2),
        "screen_batch_s": round(screen_s, 2),
        "check_per_profile_ms": round(check_s * 1000, 3),
        "profiles_ruled_out": ruled_out,
        "profiles_ruled_out_share": round(ruled_out / len(stored), 4),
        "rank_one_profile_s": round(rank_s, 3),
        "sample_kept": kept,
        "ranking_saved_s": round(ruled_out * rank_s, 1),
    }


def create_postgres(name: str) -> str:
    admin = make_engine(f"{PG_SERVER}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def drop_postgres(name: str) -> None:
    admin = make_engine(f"{PG_SERVER}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run_backend(backend: str, docs: list[Any], interests: list[Any], scratch: Path) -> dict[str, Any]:
    pg_name = f"paperboy_bench_match_{os.getpid()}"
    url = (
        f"sqlite:///{(scratch / 'match.db').as_posix()}" if backend == "sqlite" else create_postgres(pg_name)
    )
    try:
        upgrade(url)
        engine = make_engine(url)
        insert_s = bulk_insert(engine, docs, interests)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Interest)) == len(interests)
        figures = {"backend": backend, "insert_s": round(insert_s, 2), **measure(engine, len(interests))}
        engine.dispose()
        return figures
    finally:
        if backend == "postgresql":
            drop_postgres(pg_name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    docs, interests = setup_data(args.profiles, args.papers)
    report: dict[str, Any] = {
        "profiles": args.profiles,
        "papers": args.papers,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "backends": [],
    }
    with tempfile.TemporaryDirectory(prefix="paperboy-match-bench-") as scratch:
        for backend in args.backend or ["sqlite", "postgresql"]:
            figures = run_backend(backend, docs, interests, Path(scratch))
            report["backends"].append(figures)
            print(f"--- {backend}")
            for key, value in figures.items():
                print(f"{key:30s} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
