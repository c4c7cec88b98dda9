"""Scale benchmark (issue 11): one day's dispatch for many due subscriptions, PostgreSQL + RabbitMQ.

The issue's runs, on a quiet machine (the database and the vectors are made once per command; about
2 min of set-up for 100,000 subscriptions; with --semantic, embedding the 5,000 papers as ingest does,
plus 100,000 interest texts the first time, 15-30 min on a quiet machine):

    python bench/scale_bench.py --subscriptions 100000 --papers 5000 --workers 0,1,2 --old 1000
    python bench/scale_bench.py --subscriptions 100000 --papers 5000 --workers 0,1,2 --old 200 --semantic

Development: `--subscriptions 2000 --workers 0,1 --old 100 --results /tmp/scale.json`.

Builds a fresh PostgreSQL database: --papers new papers (shared/eval/dev/papers.jsonl, cycled with a
numbered title), --subscriptions verified daily email subscriptions whose profile is an eval profile's
keywords (cycled) plus one word of the papers' titles (a variation per subscriber; --variants N draws
it from N words only), all due now. With --semantic, SEMANTIC is on: the papers' vectors are computed
as ingest computes them and every interest's vector is stored as the batch screen stores it
(interest texts are embedded once per machine: a cache under --cache-dir).

Each value of --workers is one run over the same data, reset to "all due" in between:
  0  in process: `run_dispatch`, as `paperboy dispatch --now` and the clock without a broker run it;
  N  N `paperboy worker -c 1` processes on RabbitMQ (a fresh QUEUE_PREFIX); this process is the clock
     and enqueues the pass exactly as `paperboy run` does (`enqueue_pass`).
--old M then runs the old per-subscription path (a plain rank_papers ranker, in process) over the first
M subscriptions (`--old-without-gc` where it still segfaults in a garbage collection, see the README).
Every run has its own loopback SMTP sink process (bench/counting_sink.py) that writes
down each message it accepts.

Per run: wall from "all due" to the last message the sink accepted, digests/s, CPU seconds of every
process (this one, the workers and their pool processes, the database's backends, the sink), ranking's
share of the time, peak RSS per worker, CPU per digest by stage, and a projection of a 1M-subscriber
day. Every run is verified: digests sent == accepted by the sink, every due subscription sent or empty
and advanced, no duplicate delivery row or Message-ID. Results are merged into --results
(bench/results/scale.json) under the run's ranking (lexical or semantic), other entries kept.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import counting_sink  # noqa: E402
import scale_data  # noqa: E402
from proc_stats import Watch, children  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from scale_data import NOW  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from service.clock import ManualClock  # noqa: E402
from service.config import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scale.json"
OLD_MAX = 200
MATCH_LINE = re.compile(r"^(\S+ \S+) \S+ paperboy\.tasks event=match (.*)$")


class Run:
    """One measured run: the sink, the process watch, and the figures they give."""

    def __init__(self, name: str, engine: Engine, workdir: Path, due: int) -> None:
        self.name, self.engine, self.due = name, engine, due
        self.folder = workdir / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sink_log = self.folder / "sink.log"
        self.sink_log.unlink(missing_ok=True)
        self.sink, self.port = counting_sink.start(self.sink_log)
        self.groups: dict[str, Callable[[], list[int]]] = {
            "postgres": lambda: _backends(engine),
            "sink": lambda: [self.sink.pid],
        }

    def settings(self, semantic: bool) -> Settings:
        return Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=self.engine.url.render_as_string(hide_password=False),
            semantic=semantic,
            smtp_url=SecretStr(f"smtp://127.0.0.1:{self.port}"),
            smtp_rate_per_s=0,
            var_dir=self.folder / "var",
        )

    @contextlib.contextmanager
    def watched(self) -> Iterator[Watch]:
        watch = Watch(self.groups).start()
        try:
            yield watch
        finally:
            watch.stop()

    def finish(self, started: float, watch: Watch, extra: dict[str, Any]) -> dict[str, Any]:
        """Figures common to every mode; the sink is stopped."""
        log = counting_sink.read_log(self.sink_log)
        with open(self.sink_log, encoding="utf-8") as handle:
            ids = {line.split(" ", 2)[1] for line in handle}
        self.sink.terminate()
        self.sink.wait(30)
        checks = scale_data.verify(self.engine, self.due, ids, log.messages)
        wall = (log.last_at - started) if log.last_at else float("nan")
        cpu = {name: round(watch.cpu(name), 1) for name in watch.groups}
        return {
            "due": self.due,
            "wall_s": round(wall, 1),
            "digests_per_s": round(self.due / wall, 1) if wall > 0 else None,
            **extra,
            "cpu_s": {**extra.pop("cpu_s", {}), **cpu},
            "checks": checks,
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        }


def _backends(engine: Engine) -> list[int]:
    """PostgreSQL backend pids serving this database (the watch's own query excluded)."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        )


def in_process(run: Run, semantic: bool, *, old: bool = False, without_gc: bool = False) -> dict[str, Any]:
    """`run_dispatch` in this process; with `old`, the per-subscription ranker."""
    from service.delivery import pools
    from service.delivery.dispatch import run_dispatch
    from service.digest.compose import default_ranker

    settings = run.settings(semantic)
    match_cpu = [0.0]
    compose = pools.PoolMatcher.compose

    def timed_compose(self: Any, *args: Any, **kwargs: Any) -> Any:  # the match stage's CPU
        cpu = time.process_time()  # with its helper threads' (BLAS, onnxruntime): not delivery's
        try:
            return compose(self, *args, **kwargs)
        finally:
            match_cpu[0] += time.process_time() - cpu

    pools.PoolMatcher.compose = timed_compose  # type: ignore[method-assign]
    if old and without_gc:
        # Before the scaledeliver branch, the old path segfaulted inside a cyclic garbage collection
        # after a few dozen digests (a freed object still in a dict; cause not found). With the
        # collector off it completes, but keeps every digest's ORM objects (~10 MB each): OLD_MAX.
        gc.disable()
    try:
        with run.watched() as watch:
            started, cpu0 = time.time(), time.process_time()
            report = run_dispatch(
                run.engine,
                settings,
                ManualClock(NOW),
                instance="bench",
                ranker=default_ranker(settings) if old else None,
            )
            cpu = time.process_time() - cpu0
    finally:
        pools.PoolMatcher.compose = compose  # type: ignore[method-assign]
        gc.enable()
    result = run.finish(
        started,
        watch,
        {
            "mode": "old per-subscription path, in process" if old else "in process (run_dispatch)",
            "gc_disabled": old and without_gc,
            "processes": 1,
            "errors": report.errors[:5],
            "screened_out": report.screened_out,
            "rank_s": None if old else round(report.rank_seconds, 1),
            "cpu_s": {"dispatch_process": round(cpu, 1), "match": None if old else round(match_cpu[0], 1)},
            "peak_rss_mb": {
                "dispatch_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            },
        },
    )
    result["ranking_share"] = None if old else round(report.rank_seconds / result["wall_s"], 3)
    result["match_share_of_cpu"] = None if old else round(match_cpu[0] / max(cpu, 1e-9), 3)
    workers = cpu - (0.0 if old else match_cpu[0])
    result["cpu_ms_per_digest"] = _per_digest(
        result, {"match": None if old else match_cpu[0], "deliver": workers}
    )
    return result


def with_workers(run: Run, semantic: bool, count: int, broker: str, stall_s: float) -> dict[str, Any]:
    """`count` worker processes on RabbitMQ; this process is the clock and enqueues the pass."""
    from service.delivery.tasks import CHANNEL_QUEUES, configure, enqueue_pass

    prefix = f"bench-{secrets.token_hex(4)}-"
    settings = run.settings(semantic).model_copy(update={"broker_url": broker, "queue_prefix": prefix})
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": broker,
        "QUEUE_PREFIX": prefix,
        "SMTP_URL": settings.smtp_url.get_secret_value(),
        "SMTP_RATE_PER_S": "0",
        "SEMANTIC": "true" if semantic else "false",
        "VAR_DIR": str(settings.var_dir),
        "LOG_FORMAT": "text",
    }
    paperboy = str(Path(sys.executable).parent / "paperboy")
    logs = [run.folder / f"worker-{k}.log" for k in range(count)]
    procs = []
    for k, log in enumerate(logs):
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [paperboy, "worker", "-c", "1", "-n", f"{prefix}{k}@%h", "-l", "INFO"],
                    cwd=run.folder,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopping it reaches its pool process
                    preexec_fn=counting_sink.die_with_parent,
                )
            )
    app = configure(settings)
    try:
        _wait_ready(logs, procs)
        run.groups["worker_main"] = lambda: [p.pid for p in procs]
        run.groups["worker_pool"] = lambda: [c for p in procs for c in children(p.pid)]
        with run.watched() as watch:
            started, cpu0 = time.time(), time.process_time()
            report = enqueue_pass(run.engine, settings, NOW)
            clock_cpu, enqueued_s = time.process_time() - cpu0, time.time() - started
            _wait_done(run, procs, stall_s)
    finally:
        _stop(procs)
        with app.connection_for_write() as conn:
            for name in ("match", *CHANNEL_QUEUES):
                with contextlib.suppress(Exception):
                    conn.default_channel.queue_delete(prefix + name)
    matches = [_fields(m) for log in logs for m in _match_lines(log)]
    match_cpu = sum(float(m["cpu_s"]) for m in matches)
    rank_s = sum(float(m["rank_s"]) for m in matches)
    last_match = max((m["at"] for m in matches), default=started)
    result = run.finish(
        started,
        watch,
        {
            "mode": f"{count} worker process{'es' if count > 1 else ''} (paperboy worker -c 1) on RabbitMQ",
            "processes": count,
            "lost_claims": report.lost_claims,
            "enqueue_s": round(enqueued_s, 1),
            "match_tasks": len(matches),
            "match_phase_s": round(last_match - started, 1),
            "rank_s": round(rank_s, 1),
            "cpu_s": {"clock": round(clock_cpu, 1), "match": round(match_cpu, 1)},
            "peak_rss_mb": {
                "worker_pool": watch.peak_rss("worker_pool"),
                "worker_main": watch.peak_rss("worker_main"),
            },
        },
    )
    result["ranking_share"] = round(rank_s / (result["wall_s"] * count), 3)
    result["match_share_of_cpu"] = round(match_cpu / max(result["cpu_s"]["worker_pool"], 1e-9), 3)
    deliver = result["cpu_s"]["worker_pool"] - match_cpu + result["cpu_s"]["worker_main"]
    result["cpu_ms_per_digest"] = _per_digest(
        result, {"match": match_cpu, "deliver": deliver, "clock": clock_cpu}
    )
    return result


def _wait_ready(logs: list[Path], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}); see {log}")
        if all(" ready." in log.read_text(errors="replace") for log in logs):
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers not ready after 180 s; see {logs}")


def _wait_done(run: Run, procs: list[subprocess.Popen[bytes]], stall_s: float) -> None:
    """Until every due subscription is advanced and every sent digest reached the sink (or a stall)."""
    last, progress_at = (-1, -1), time.monotonic()
    while True:
        left = scale_data.not_advanced(run.engine)
        # The sink's log is read only at the end: at 100,000 lines, reading it every second costs CPU.
        accepted = counting_sink.count_lines(run.sink_log) if left == 0 else -1
        if left == 0 and accepted >= scale_data.sent_count(run.engine):
            return
        if (left, accepted) != last:
            last, progress_at = (left, accepted), time.monotonic()
        elif time.monotonic() - progress_at > stall_s:
            print(f"  stalled: {left} not advanced, {accepted} accepted; giving up", flush=True)
            return
        if any(p.poll() is not None for p in procs):
            print("  a worker exited during the run", flush=True)
            return
        time.sleep(1)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _match_lines(log: Path) -> Iterator[re.Match[str]]:
    for line in log.read_text(errors="replace").splitlines():
        found = MATCH_LINE.match(line)
        if found:
            yield found


def _fields(found: re.Match[str]) -> dict[str, Any]:
    fields: dict[str, Any] = dict(pair.split("=", 1) for pair in found.group(2).split())
    # logging's asctime is local time with milliseconds after a comma
    fields["at"] = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return fields


def _per_digest(result: dict[str, Any], stages: dict[str, float | None]) -> dict[str, float | None]:
    """CPU milliseconds per due digest, by stage; the database's and the sink's from their processes."""
    due = max(result["due"], 1)
    out = {name: (round(1000 * cpu / due, 2) if cpu is not None else None) for name, cpu in stages.items()}
    out["database"] = round(1000 * result["cpu_s"]["postgres"] / due, 2)
    out["smtp_sink"] = round(1000 * result["cpu_s"]["sink"] / due, 2)
    return out


def projection(run: dict[str, Any], window_h: float, subscribers: int = 1_000_000) -> dict[str, Any]:
    """A day of `subscribers` digests from a run's CPU per digest: core-hours, workers for a window."""
    ms = run["cpu_ms_per_digest"]
    worker_ms = (ms.get("match") or 0.0) + (ms.get("deliver") or 0.0)
    per_hour = 3_600_000 / subscribers  # ms of CPU one core has per digest, per hour of window
    return {
        "from_run": run["mode"],
        "subscribers": subscribers,
        "window_h": window_h,
        "worker_core_hours": round(worker_ms / per_hour, 1),
        "match_core_hours": round((ms.get("match") or 0.0) / per_hour, 1),
        "database_core_hours": round(ms["database"] / per_hour, 1),
        "clock_core_hours": round((ms.get("clock") or 0.0) / per_hour, 2),
        "worker_processes_needed": math.ceil(worker_ms / per_hour / window_h),
        "database_cores_needed": math.ceil(ms["database"] / per_hour / window_h),
        "note": "one worker process = one core; SMTP relay and RabbitMQ not included",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument(
        "--variants", type=int, default=0, help="words a profile's variation is drawn from (0: all)"
    )
    parser.add_argument(
        "--workers", default="0", help="comma-separated runs: 0 in process, N worker processes"
    )
    parser.add_argument(
        "--old", type=int, default=100, help="subscriptions run through the old path (0: skip)"
    )
    parser.add_argument(
        "--old-without-gc",
        action="store_true",
        help=f"the old path with the garbage collector off (where it segfaults; --old {OLD_MAX} at most)",
    )
    parser.add_argument(
        "--semantic", action="store_true", help="SEMANTIC on, paper and interest vectors stored"
    )
    parser.add_argument("--window-h", type=float, default=1.0, help="delivery window of the 1M projection")
    parser.add_argument(
        "--stall-s", type=float, default=600, help="give a worker run up after this long idle"
    )
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--broker", default=os.environ.get("PAPERBOY_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "paperboy-scale-bench",
        help="interest-vector cache and each run's logs (sink, workers)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    modes = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.old_without_gc and args.old > OLD_MAX:
        parser.error(
            f"--old {args.old} with --old-without-gc: at most {OLD_MAX}; without the garbage collector "
            "the old path keeps about 10 MB per digest until it ends"
        )
    ranking = "semantic" if args.semantic else "lexical"
    workdir = args.cache_dir / f"run-{os.getpid()}"
    name = f"paperboy_scale_bench_{os.getpid()}"

    started = time.perf_counter()
    engine = scale_data.fresh_database(args.pg, name)
    setup: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    try:
        words = scale_data.load_papers(engine, args.papers)
        scale_data.load_subscriptions(engine, args.subscriptions, words, args.variants)
        setup["data_s"] = round(time.perf_counter() - started, 1)
        if args.semantic:
            settings = Settings(_env_file=None, database_url=str(engine.url), semantic=True)  # type: ignore[call-arg]
            setup.update(scale_data.prepare_semantic(engine, settings, args.cache_dir))
        print(f"set-up: {setup}", flush=True)
        for count in modes:
            key = "in_process" if count == 0 else f"workers_{count}"
            due = scale_data.reset(engine)
            scale_data.vacuum(engine)
            run = Run(key, engine, workdir, due)
            if count == 0:
                runs[key] = in_process(run, args.semantic)
            else:
                runs[key] = with_workers(run, args.semantic, count, args.broker, args.stall_s)
            print(f"{key}: {json.dumps(runs[key])}", flush=True)
            write(args, ranking, setup, runs, final=False)  # a later crash keeps what was measured
        if args.old:
            due = scale_data.reset(engine, only_first=args.old)
            scale_data.vacuum(engine)
            runs["old_path"] = in_process(
                Run("old_path", engine, workdir, due), args.semantic, old=True, without_gc=args.old_without_gc
            )
            print(f"old_path: {json.dumps(runs['old_path'])}", flush=True)
    finally:
        engine.dispose()
        scale_data.drop_database(args.pg, name)
    write(args, ranking, setup, runs)


def write(
    args: argparse.Namespace,
    ranking: str,
    setup: dict[str, Any],
    runs: dict[str, dict[str, Any]],
    *,
    final: bool = True,
) -> None:
    new = [r for k, r in runs.items() if k != "old_path"]
    best = max(new, key=lambda r: r["digests_per_s"] or 0, default=None)
    entry: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "uptime_load_average_at_start": LOAD_AT_START,
        "papers": args.papers,
        "subscriptions": args.subscriptions,
        "set_up": setup,
        "runs": runs,
        "all_checks_ok": all(r["checks"]["ok"] for r in runs.values()),
    }
    if best is not None and "old_path" in runs and runs["old_path"]["digests_per_s"]:
        entry["speedup_vs_old_path"] = round(best["digests_per_s"] / runs["old_path"]["digests_per_s"], 1)
    one, two = runs.get("workers_1"), runs.get("workers_2")
    if one and two and one["match_phase_s"] and two["match_phase_s"]:
        entry["match_phase_speedup_1_to_2_workers"] = round(one["match_phase_s"] / two["match_phase_s"], 2)
        entry["wall_speedup_1_to_2_workers"] = round(one["wall_s"] / two["wall_s"], 2)
    if best is not None:
        entry["projection_1m"] = projection(max(new, key=lambda r: r["processes"]), args.window_h)
    results: dict[str, Any] = {}
    if args.results.exists():
        with contextlib.suppress(ValueError):
            results = json.loads(args.results.read_text())
    if results.get("benchmark") != "scale" or ("lexical" not in results and "semantic" not in results):
        results = {"benchmark": "scale"}  # the older single-run layout is replaced
    results[ranking] = entry
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    if final:
        print(json.dumps(entry, indent=2))


LOAD_AT_START = [round(x, 1) for x in os.getloadavg()]

if __name__ == "__main__":
    main()
