"""Scale benchmark: one dispatch pass over many due subscriptions on PostgreSQL, pool path vs the old one.

    python bench/scale_bench.py [--subscriptions 10000] [--papers 5000] [--old 500]
                                [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

Builds a fresh PostgreSQL database: --papers new papers (shared/eval/dev/papers.jsonl, cycled with a
numbered title when more are asked for), --subscriptions verified email subscriptions whose profiles
are shared/eval/dev/profiles.jsonl's keywords plus one word drawn from the papers (a variation per
subscriber), every one due now. A loopback aiosmtpd Sink in its own process accepts the mail.

1. pool: `run_dispatch` as `paperboy dispatch --now` runs it (pool matching behind the batch screen):
   wall time from "all due" to the last message accepted, digests/s, the share spent composing.
2. old: the per-subscription path (a plain rank_papers ranker: candidates loaded and ranked per
   digest) over the first --old subscriptions of the same data, same pass otherwise.

Lexical ranking (SEMANTIC=false). Writes bench/results/scale.json and prints the figures.
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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest_bench import start_sink  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import Engine, delete, func, insert, select, text, update  # noqa: E402

from service.clock import ManualClock  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import make_engine  # noqa: E402
from service.delivery.dispatch import DispatchReport, run_dispatch  # noqa: E402
from service.digest.compose import default_ranker  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import Delivery, DeliveryPaper, Interest, Paper, Profile, Subscriber, Subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scale.json"
EVAL = ROOT.parent / "shared" / "eval" / "dev"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def fresh_database(server: str, name: str) -> Engine:
    admin = make_engine(f"{server}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{server}/{name}"
    upgrade(url)
    return make_engine(url)


def load_papers(engine: Engine, count: int) -> list[str]:
    rows = [json.loads(line) for line in (EVAL / "papers.jsonl").read_text().splitlines()]
    values = []
    for n in range(count):
        row = rows[n % len(rows)]
        round_ = n // len(rows)
        values.append(
            {
                "key": f"bench:{n}",
                "title": row["title"] if round_ == 0 else f"{row['title']} ({round_})",
                "abstract": row["abstract"],
                "authors": ["A. Author"],
                "url": f"https://example.org/{n}",
                "first_seen_at": NOW - dt.timedelta(hours=3),
                "created_at": NOW,
                "updated_at": NOW,
                "title_key": f"bench {n}",
                "links": [],
                "source": "bench",
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(values), 1000):
            conn.execute(insert(Paper), values[start : start + 1000])
    words = [w.lower() for r in rows[:300] for w in r["title"].split() if w.isalpha() and len(w) > 6]
    return sorted(set(words))


def load_subscriptions(engine: Engine, count: int, words: list[str]) -> None:
    profiles = [json.loads(line) for line in (EVAL / "profiles.jsonl").read_text().splitlines()]
    rng = random.Random(11)
    stamp = {"created_at": NOW, "updated_at": NOW}
    with engine.begin() as conn:
        for start in range(0, count, 2000):
            ids = range(start, min(count, start + 2000))
            conn.execute(
                insert(Subscriber),
                [{"id": i + 1, "email": f"r{i}@example.org", "verified": True, **stamp} for i in ids],
            )
            conn.execute(
                insert(Profile),
                [{"id": i + 1, "name": f"bench-{i}", "subscriber_id": i + 1, **stamp} for i in ids],
            )
            interests = []
            for i in ids:
                keywords = f"{profiles[i % len(profiles)]['keywords']}, {rng.choice(words)}"
                interests.append(
                    {"profile_id": i + 1, "name": keywords, "keywords": keywords, "seeds": [], **stamp}
                )
            conn.execute(insert(Interest), interests)
            conn.execute(
                insert(Subscription),
                [
                    {
                        "id": i + 1,
                        "subscriber_id": i + 1,
                        "profile_id": i + 1,
                        "channel": "email",
                        "address": f"r{i}@example.org",
                        "interests": [],
                        "cadence": "daily",
                        "send_time": dt.time(8, 0),
                        "timezone": "UTC",
                        "max_papers": 10,
                        "min_score": 0.0,
                        "paused": False,
                        "status": "active",
                        "next_digest_at": NOW - dt.timedelta(minutes=1),
                        **stamp,
                    }
                    for i in ids
                ],
            )
        for table in ("subscribers", "profiles", "interests", "subscriptions"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )


def reset(engine: Engine, only_first: int | None = None) -> None:
    """Back to "all due, nothing sent" (only the first `only_first` due when given)."""
    with engine.begin() as conn:
        conn.execute(delete(DeliveryPaper))
        conn.execute(delete(Delivery))
        conn.execute(update(Subscription).values(next_digest_at=NOW + dt.timedelta(days=1)))
        due = update(Subscription).values(next_digest_at=NOW - dt.timedelta(minutes=1))
        conn.execute(due.where(Subscription.id <= only_first) if only_first else due)


def measure(engine: Engine, settings: Settings, *, old: bool) -> tuple[DispatchReport, dict[str, Any]]:
    clock = ManualClock(NOW)
    ranker = default_ranker(settings) if old else None
    started = time.perf_counter()
    cpu0 = time.process_time()
    report = run_dispatch(engine, settings, clock, instance="bench", ranker=ranker)
    wall = time.perf_counter() - started
    sent = report.count("sent")
    with engine.connect() as conn:
        recorded = conn.scalar(select(func.count()).select_from(DeliveryPaper))
    return report, {
        "digests": len(report.outcomes),
        "sent": sent,
        "empty": report.count("empty"),
        "errors": len(report.errors),
        "delivery_papers": recorded,
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "digests_per_s": round(len(report.outcomes) / wall, 1),
        "compose_s": round(report.rank_seconds, 2) if not old else None,
        "compose_share": round(report.rank_seconds / wall, 3) if not old else None,
        "screened_out": report.screened_out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--old", type=int, default=500, help="subscriptions run through the old path")
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()

    engine = fresh_database(args.pg, f"paperboy_scale_bench_{os.getpid()}")
    words = load_papers(engine, args.papers)
    load_subscriptions(engine, args.subscriptions, words)
    sink, port = start_sink()
    settings = Settings(
        database_url=str(engine.url),
        semantic=False,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"),
        smtp_rate_per_s=1e6,
        var_dir=Path("/tmp/paperboy-scale-bench"),
    )
    try:
        _, pool = measure(engine, settings, old=False)
        print(f"pool path: {pool}", flush=True)
        reset(engine, only_first=args.old)
        _, old = measure(engine, settings, old=True)
        print(f"old path ({args.old} subscriptions): {old}", flush=True)
    finally:
        sink.kill()
        engine.dispose()
        admin = make_engine(f"{args.pg}/test")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{engine.url.database}" WITH (FORCE)'))
        admin.dispose()
    result = {
        "benchmark": "scale",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": "PostgreSQL (loopback)",
        "ranking": "lexical",
        "papers": args.papers,
        "subscriptions": args.subscriptions,
        "pool_path": pool,
        "old_path": {**old, "subscriptions": args.old},
        "speedup": round(pool["digests_per_s"] / old["digests_per_s"], 1),
        "cpu_ms_per_digest": {
            "pool": round(1000 * pool["cpu_s"] / pool["digests"], 1),
            "old": round(1000 * old["cpu_s"] / old["digests"], 1),
        },
        # This process's CPU only (PostgreSQL and the SMTP sink run in their own processes).
        "projected_1m_core_hours": round(1e6 * pool["cpu_s"] / pool["digests"] / 3600, 1),
        "load_average_during_run": os.getloadavg()[0],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
