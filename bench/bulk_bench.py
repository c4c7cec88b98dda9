"""Bulk import benchmark: `paperboy subscriptions import` of 100,000 CSV rows into PostgreSQL.

    python bench/bulk_bench.py [--rows 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

Runs the same code as the CLI (read_records -> import_subscriptions -> commit) in a scratch database
(`paperboy_bench_bulk_<pid>`, created and dropped here): a first import (every row new), a re-import
of the same file (every row unchanged), a dry run, and the export back. Writes bench/results/bulk.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bulk import export_records, import_subscriptions, read_records, write_records  # noqa: E402
from service.db import make_engine  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import Subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bulk.json"
TOPICS = [
    "sparse attention",
    "kv cache",
    "diffusion",
    "graph neural networks",
    "quantization",
    "rlhf",
    "agents",
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Europe/Berlin"]


def make_csv(rows: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("email,interests,query,cadence,weekday,time,timezone,max_papers\n")
    for n in range(rows):
        interests = ";".join(rng.sample(TOPICS, rng.randint(1, 3)))
        cadence = rng.choice(["daily", "daily", "weekdays", "weekly"])
        weekday = rng.choice(["mon", "fri"]) if cadence == "weekly" else ""
        out.write(
            f"reader{n}@example.org,{interests},,{cadence},{weekday},0{rng.randint(6, 9)}:00,"
            f"{rng.choice(ZONES)},{rng.randint(5, 20)}\n"
        )
    return out.getvalue()


def timed_import(engine, data: str, **kw) -> tuple[float, float, dict]:  # type: ignore[no-untyped-def]
    """(wall seconds, this process's CPU seconds, report): on a shared machine the wall time depends on
    the load, the CPU time much less."""
    started, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        report = import_subscriptions(session, read_records(io.StringIO(data, newline=""), "csv"), **kw)
        if kw.get("dry_run"):
            session.rollback()
        else:
            session.commit()
    return time.perf_counter() - started, time.process_time() - cpu, report.summary()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dry-run-too", action="store_true", help="also time a --dry-run import first")
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()
    name = f"paperboy_bench_bulk_{os.getpid()}"
    admin = make_engine(f"{args.pg}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{args.pg}/{name}"
    results: dict[str, object] = {
        "rows": args.rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    try:
        upgrade(url)
        engine = make_engine(url)
        data = make_csv(args.rows)
        consent = {"confirmed": True, "consent_source": "bench"}
        runs = [("first_import", consent), ("reimport_unchanged", consent)]
        if args.dry_run_too:
            runs.insert(0, ("dry_run", {"dry_run": True, **consent}))
        results["load_average_before"] = os.getloadavg()[0]
        for label, kw in runs:
            seconds, cpu, summary = timed_import(engine, data, **kw)
            results[label] = {
                "seconds": round(seconds, 2),
                "client_cpu_seconds": round(cpu, 2),
                "rows_per_s": round(args.rows / seconds),
                **summary,
            }
            print(f"{label:20s} {seconds:7.2f} s wall, {cpu:6.2f} s client CPU  {summary}")
        results["load_average_after"] = os.getloadavg()[0]
        started = time.perf_counter()
        with Session(engine) as session:
            count = write_records(export_records(session), "csv", io.StringIO())
            stored = session.scalar(select(func.count()).select_from(Subscription))
        seconds = time.perf_counter() - started
        results["export"] = {"seconds": round(seconds, 2), "rows": count, "stored": stored}
        print(f"{'export':20s} {seconds:7.2f} s  {count / seconds:9.0f} rows/s  ({stored} stored)")
        engine.dispose()
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
