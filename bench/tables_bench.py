"""Tables benchmark: a dispatch pass with a large delivery history present vs on empty delivery tables.

    python bench/tables_bench.py [--rows 100000000] [--due 500] [--papers 2000] [--days 365] [--runs 3]
                                 [--pg postgresql+psycopg://postgres@127.0.0.1:5432] [--keep]

Builds a fresh PostgreSQL database with --papers new papers and enough subscriptions to hold --rows
delivery_papers rows at ten papers a day for --days days each (at least --due of them; only the first
--due are due now). It times `run_dispatch` (as `paperboy dispatch --now` runs it) --runs times on
empty delivery tables, then streams the history into deliveries and delivery_papers with COPY FROM
STDIN (secondary indexes and foreign keys dropped during the load and rebuilt after, as a restore
would), runs VACUUM ANALYZE, and times the same pass again. Every due subscription got its last digest
a day ago, so both passes rank the same candidates: the difference is what the history costs.

It also records EXPLAIN ANALYZE of the pass's two history reads (window starts and held papers) for
the --due subscriptions, and of the held-papers read as it was before paper_seen_at (joined to papers).
Lexical ranking (SEMANTIC=false). Writes bench/results/tables.json and prints the figures. The
database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest_bench import cpu_seconds, start_sink  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from scale_data import NOW, drop_database, fresh_database, load_papers, load_subscriptions  # noqa: E402
from sqlalchemy import Engine, delete, func, insert, select, text, update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from service.clock import ManualClock  # noqa: E402
from service.config import Settings  # noqa: E402
from service.delivery.dispatch import run_dispatch  # noqa: E402
from service.delivery.retention import MARGIN, prune  # noqa: E402
from service.digest.compose import MAX_WINDOW  # noqa: E402
from service.models import Delivery, DeliveryPaper, Paper, Subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "tables.json"
PER_DAY = 10  # papers in each history digest
DAY_PAPERS = 50  # history papers first seen each day; each digest holds PER_DAY of them
COPY_CHUNK = 20_000  # deliveries per write to COPY


def _raw(engine: Engine) -> Any:
    return engine.raw_connection()


def make_due(engine: Engine, due: int) -> None:
    """Only the first `due` subscriptions are due now; the pass's own deliveries are removed."""
    with engine.begin() as conn:
        conn.execute(delete(Delivery).where(Delivery.created_at >= NOW - dt.timedelta(hours=1)))
        conn.execute(update(Subscription).values(next_digest_at=NOW + dt.timedelta(days=1)))
        conn.execute(
            update(Subscription)
            .where(Subscription.id <= due)
            .values(next_digest_at=NOW - dt.timedelta(minutes=1))
        )


def backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to the bench database."""
    with engine.connect() as conn:
        pids = conn.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": engine.url.database}
        ).all()
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            found[pid] = cpu_seconds(pid)
    return found


def timed_passes(engine: Engine, settings: Settings, due: int, runs: int) -> dict[str, Any]:
    walls, cpus, db_cpus, sent = [], [], [], []
    for _ in range(runs):
        make_due(engine, due)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE deliveries"))
        db0 = backend_cpu(engine)
        started, cpu0 = time.perf_counter(), time.process_time()
        report = run_dispatch(engine, settings, ManualClock(NOW), instance="bench")
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu0)
        db1 = backend_cpu(engine)
        db_cpus.append(sum(at - db0.get(pid, 0.0) for pid, at in db1.items()))
        sent.append(report.count("sent"))
        if report.errors:
            raise RuntimeError(f"dispatch errors: {report.errors[:3]}")
    return {
        "runs": runs,
        "sent": sent,
        "wall_s": [round(w, 2) for w in walls],
        "wall_s_median": round(statistics.median(walls), 2),
        "cpu_s": [round(c, 2) for c in cpus],
        "cpu_s_median": round(statistics.median(cpus), 2),
        # PostgreSQL backends' CPU during the pass (connections the pool kept open across it).
        "db_cpu_s": [round(c, 2) for c in db_cpus],
        "db_cpu_s_median": round(statistics.median(db_cpus), 2),
    }


def load_history_papers(engine: Engine, days: int) -> int:
    """DAY_PAPERS papers first seen on each of the `days` days before the last digest; the first id."""
    values = [
        {
            "key": f"history:{n}",
            "title": f"History paper {n}",
            "abstract": "An older paper.",
            "authors": ["A. Author"],
            "url": f"https://example.org/h{n}",
            "first_seen_at": _day(n // DAY_PAPERS) - dt.timedelta(hours=1),
            "created_at": NOW,
            "updated_at": NOW,
            "title_key": f"history {n}",
            "links": [],
            "source": "bench",
        }
        for n in range(days * DAY_PAPERS)
    ]
    with engine.begin() as conn:
        first = (conn.scalar(select(func.max(Paper.id))) or 0) + 1
        for start in range(0, len(values), 2000):
            conn.execute(insert(Paper), values[start : start + 2000])
        return int(conn.scalar(select(func.min(Paper.id)).where(Paper.key == "history:0")) or first)


def _day(k: int) -> dt.datetime:
    """History day k's digest time: k = 0 is a day before NOW."""
    return NOW - dt.timedelta(days=k + 1)


def _secondary(cur: Any, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(unique and foreign-key constraints, other non-primary indexes) of `table`: name, definition."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        (table,),
    )
    constraints = list(cur.fetchall())
    cur.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s"
        " AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    )
    return constraints, list(cur.fetchall())


def copy_history(engine: Engine, subscriptions: int, days: int, first_paper: int) -> dict[str, Any]:
    """Stream subscriptions x days sent deliveries of PER_DAY papers each into the two tables."""
    conn = _raw(engine)
    timings: dict[str, float] = {}
    try:
        cur = conn.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        saved = {t: _secondary(cur, t) for t in ("deliveries", "delivery_papers")}
        for table, (constraints, indexes) in saved.items():
            for name, _ in constraints:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
        conn.commit()
        day_text = [_day(k).strftime("%Y-%m-%d %H:%M:%S+00") for k in range(days)]
        seen_text = [(_day(k) - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S+00") for k in range(days)]
        periods = [_day(k).date().isoformat() for k in range(days)]
        started = time.perf_counter()
        with cur.copy(
            "COPY deliveries (id, subscription_id, period, status, attempts, created_at, updated_at, sent_at)"
            " FROM STDIN"
        ) as copy:
            lines: list[str] = []
            for s in range(1, subscriptions + 1):
                base = (s - 1) * days
                for k in range(days):
                    t = day_text[k]
                    lines.append(f"{base + k + 1}\t{s}\t{periods[k]}\tsent\t1\t{t}\t{t}\t{t}\n")
                if len(lines) >= COPY_CHUNK:
                    copy.write("".join(lines))
                    lines.clear()
            copy.write("".join(lines))
        conn.commit()
        timings["copy_deliveries_s"] = time.perf_counter() - started
        started = time.perf_counter()
        reason = '{"why": "bench history"}'
        with cur.copy(
            "COPY delivery_papers (id, delivery_id, subscription_id, paper_id, rank, score, reason,"
            " paper_seen_at) FROM STDIN"
        ) as copy:
            lines = []
            for s in range(1, subscriptions + 1):
                base = (s - 1) * days
                offsets = [(s * 7 + r) % DAY_PAPERS for r in range(PER_DAY)]
                for k in range(days):
                    did = base + k + 1
                    day_first = first_paper + k * DAY_PAPERS
                    seen = seen_text[k]
                    head = f"\t{did}\t{s}\t"
                    lines.extend(
                        f"{did * PER_DAY + r}{head}{day_first + off}\t{r + 1}\t0.5\t{reason}\t{seen}\n"
                        for r, off in enumerate(offsets)
                    )
                    if len(lines) >= COPY_CHUNK * PER_DAY:
                        copy.write("".join(lines))
                        lines.clear()
            copy.write("".join(lines))
        conn.commit()
        timings["copy_delivery_papers_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for table, (constraints, indexes) in saved.items():
            for _, definition in indexes:
                cur.execute(definition)
                conn.commit()
            for name, definition in constraints:
                # Foreign keys come back NOT VALID: enforced for every new row, the loaded rows are
                # consistent by construction (validating would scan them all once more).
                suffix = " NOT VALID" if definition.startswith("FOREIGN KEY") else ""
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}{suffix}')
                conn.commit()
        for table in ("deliveries", "delivery_papers"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.commit()
        timings["indexes_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.driver_connection.autocommit = True  # VACUUM runs outside a transaction
        cur.execute("VACUUM ANALYZE deliveries")
        cur.execute("VACUUM ANALYZE delivery_papers")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
    finally:
        conn.close()
    return {name: round(value, 1) for name, value in timings.items()}


# The pass's history reads for `due` subscriptions (service.digest.compose.window_starts and
# service.delivery.pools.held_papers), and held_papers as it read before paper_seen_at.
QUERIES = {
    "window_starts": (
        "SELECT subscription_id, max(created_at) FROM deliveries WHERE subscription_id = ANY(:ids)"
        " AND created_at > :floor AND status IN ('claimed', 'sent', 'retry', 'empty')"
        " GROUP BY subscription_id"
    ),
    "held_papers": (
        "SELECT own.id, dp.paper_id FROM subscriptions own JOIN subscriptions inbox"
        " ON inbox.channel = own.channel AND inbox.address = own.address"
        " JOIN delivery_papers dp ON dp.subscription_id = inbox.id"
        " WHERE own.id = ANY(:ids) AND dp.paper_seen_at > :after"
    ),
    "held_papers_before_paper_seen_at": (
        "SELECT own.id, dp.paper_id FROM subscriptions own JOIN subscriptions inbox"
        " ON inbox.channel = own.channel AND inbox.address = own.address"
        " JOIN delivery_papers dp ON dp.subscription_id = inbox.id JOIN papers p ON p.id = dp.paper_id"
        " WHERE own.id = ANY(:ids) AND p.first_seen_at > :after"
    ),
    "window_starts_before_bound": (
        "SELECT subscription_id, max(created_at) FROM deliveries WHERE subscription_id = ANY(:ids)"
        " AND status IN ('claimed', 'sent', 'retry', 'empty') GROUP BY subscription_id"
    ),
}


def explain(engine: Engine, due: int) -> dict[str, Any]:
    params = {"ids": list(range(1, due + 1)), "floor": NOW - dt.timedelta(days=35), "after": _day(0)}
    found: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, sql in QUERIES.items():
            plan = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"), params).scalar()
            top = plan[0]
            found[name] = {
                "execution_ms": round(top["Execution Time"], 1),
                "rows": top["Plan"]["Actual Rows"],
                "shared_blocks_read_or_hit": top["Plan"].get("Shared Hit Blocks", 0)
                + top["Plan"].get("Shared Read Blocks", 0),
                "plan": _nodes(top["Plan"]),
            }
    return found


def _nodes(plan: dict[str, Any]) -> list[str]:
    """The plan's node types with their index, depth first (enough to see which index a read uses)."""
    label = plan["Node Type"] + (f" {plan['Index Name']}" if "Index Name" in plan else "")
    return [label] + [n for child in plan.get("Plans", []) for n in _nodes(child)]


def prune_oldest_day(engine: Engine, days: int) -> dict[str, Any]:
    """`paperboy prune` on the day the history's oldest papers fall past the horizon: one day's rows."""
    oldest_seen = _day(days - 1) - dt.timedelta(hours=1)
    now = oldest_seen + MAX_WINDOW + MARGIN + dt.timedelta(minutes=30)
    started, cpu0 = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        result = prune(session, now=now)
    wall = time.perf_counter() - started
    return {
        "moved": result.moved,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "rows_per_s": round(result.moved / wall) if wall else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000, help="delivery_papers rows of history")
    parser.add_argument("--due", type=int, default=500, help="subscriptions due in the timed pass")
    parser.add_argument("--papers", type=int, default=2000, help="new papers the pass ranks")
    parser.add_argument("--days", type=int, default=365, help="days of history per subscription (at most)")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per state (median reported)")
    parser.add_argument("--keep", action="store_true", help="keep the database (to EXPLAIN by hand)")
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the finally below still drops the database
    subscriptions = max(args.due, -(-args.rows // (PER_DAY * args.days)))
    days = max(1, args.rows // (PER_DAY * subscriptions))

    engine = fresh_database(args.pg, f"paperboy_tables_bench_{os.getpid()}")
    sink, port = start_sink()
    settings = Settings(
        database_url=str(engine.url),
        semantic=False,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"),
        smtp_rate_per_s=1e6,
        var_dir=Path("/tmp/paperboy-tables-bench"),
        # The history's last digest is a day old: a day's lookback gives the empty run the same window.
        digest_lookback_days=1,
    )
    try:
        words = load_papers(engine, args.papers)
        load_subscriptions(engine, subscriptions, words, 0)
        first_paper = load_history_papers(engine, days)
        empty = timed_passes(engine, settings, args.due, args.runs)
        print(f"empty delivery tables: {empty}", flush=True)
        empty_plans = explain(engine, args.due)
        make_due(engine, args.due)
        started = time.perf_counter()
        load = copy_history(engine, subscriptions, days, first_paper)
        load["total_s"] = round(time.perf_counter() - started, 1)
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(DeliveryPaper))
            deliveries = conn.scalar(select(func.count()).select_from(Delivery))
            size = conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('delivery_papers'))"))
        print(f"history: {rows} delivery_papers, {deliveries} deliveries ({size}), load {load}", flush=True)
        full = timed_passes(engine, settings, args.due, args.runs)
        print(f"with history: {full}", flush=True)
        full_plans = explain(engine, args.due)
        pruned = prune_oldest_day(engine, days)
        print(f"prune of the oldest day: {pruned}", flush=True)
    finally:
        sink.kill()
        engine.dispose()
        if not args.keep:
            drop_database(args.pg, str(engine.url.database))
    result = {
        "benchmark": "tables",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": "PostgreSQL (loopback)",
        "ranking": "lexical",
        "due_subscriptions": args.due,
        "papers": args.papers,
        "history": {
            "delivery_papers": rows,
            "deliveries": deliveries,
            "subscriptions": subscriptions,
            "days": days,
            "delivery_papers_size": size,
            "load_s": load,
        },
        "pass_empty_tables": empty,
        "pass_with_history": full,
        "wall_ratio": round(full["wall_s_median"] / empty["wall_s_median"], 3),
        "cpu_ratio": round(full["cpu_s_median"] / empty["cpu_s_median"], 3),
        "prune_oldest_day": pruned,
        "history_reads_empty": empty_plans,
        "history_reads_with_history": full_plans,
        "load_average_after": os.getloadavg()[0],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("history_reads")}, indent=2))
    for name, plan in full_plans.items():
        print(
            f"{name}: {plan['execution_ms']} ms with history ({empty_plans[name]['execution_ms']} ms empty)"
        )


if __name__ == "__main__":
    main()
