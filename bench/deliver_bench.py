"""Delivery-step benchmark: claim, render, send, mark for composed digests on PostgreSQL (issue 11, item 1).

    python bench/deliver_bench.py [--subscriptions 1000] [--papers 2000]
                                  [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

Builds the scale benchmark's database (bench/scale_bench.py: --papers papers, --subscriptions verified
email subscriptions, all due), composes every digest once by pool (not measured), then delivers the
same digests three times to the scale benchmark's loopback SMTP sink (bench/counting_sink.py) in its
own process:

1. single: `deliver()` one digest at a time, as a pass did before batching;
2. batched: `deliver_batch()` (service.delivery.batch), as a pass and a worker do now;
3. batched again, with each database step of the batch metered alone (`phases`): the chunk's claim
   (read + INSERTs), the per-send mark, and the chunk's closing writes (last_sent_at, release).

For each: CPU ms per digest of this process and of the PostgreSQL backends serving it (/proc; the
backends' from schedstat, in nanoseconds), SQL statements per digest, digests/s. Lexical ranking.

4. steps: the delivery step's own CPU without the database, each step over every composed digest in
   turn (time.process_time): `links` signs the digest's links as a worker does (build_digest),
   `render` the subject, text and HTML (Jinja2 + css-inline), `mime` the message bytes
   (EmailChannel.digest_message minus render), `smtp` the SMTP client handing the bytes to the sink.

`--steps-only` skips 1-3 and writes bench/results/deliver-steps.json; a full run writes
bench/results/deliver.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import counting_sink  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from scale_data import NOW, drop_database, fresh_database, load_papers, load_subscriptions  # noqa: E402
from sqlalchemy import Engine, delete, event, select  # noqa: E402
from sqlalchemy.orm import Session, selectinload  # noqa: E402

from service.channels.email import EmailChannel  # noqa: E402
from service.config import Settings  # noqa: E402
from service.delivery import batch  # noqa: E402
from service.delivery.attempt import ChannelPool, deliver  # noqa: E402
from service.delivery.batch import Planned, deliver_batch  # noqa: E402
from service.delivery.pools import PoolMatcher  # noqa: E402
from service.delivery.schedule import Schedule, latest_slot  # noqa: E402
from service.digest.compose import build_digest  # noqa: E402
from service.digest.model import Digest  # noqa: E402
from service.digest.render import render_digest_email  # noqa: E402
from service.matching.batch import ScreenedRanker  # noqa: E402
from service.models import Delivery, DeliveryPaper, Profile, Subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "deliver.json"
STEPS_RESULTS = ROOT / "bench" / "results" / "deliver-steps.json"


class Meter:
    """Statements this process sends, and the CPU of the PostgreSQL backends it talks to."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.backends: set[int] = set()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "connect", self._connected)

    def _statement(self, *_: object) -> None:
        self.statements += 1

    def _connected(self, dbapi_connection: Any, _record: object) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backends.add(cursor.fetchone()[0])

    def backend_cpu(self) -> float:
        return sum(_run_seconds(pid) for pid in self.backends)


def _run_seconds(pid: int) -> float:
    """CPU seconds a single-threaded process has run, to the nanosecond (/proc/PID/schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except OSError:  # a backend whose connection the pool closed
        return 0.0


class Phases:
    """CPU of this process and of the backends inside the batch's database steps, step by step."""

    STEPS = {"claim": "_claim", "mark": "mark_sent_now", "close": "note_sent", "release": "release_unsent"}

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.cpu = {name: [0.0, 0.0, 0] for name in self.STEPS}  # worker s, backends s, calls
        self.saved = {name: getattr(batch, attr) for name, attr in self.STEPS.items()}

    def __enter__(self) -> Phases:
        for name, attr in self.STEPS.items():
            setattr(batch, attr, self._metered(name, self.saved[name]))
        return self

    def __exit__(self, *_: object) -> None:
        for name, attr in self.STEPS.items():
            setattr(batch, attr, self.saved[name])

    def _metered(self, name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def metered(*args: Any, **kwargs: Any) -> Any:
            backends = self.meter.backend_cpu()
            cpu = time.process_time()
            try:
                return step(*args, **kwargs)
            finally:
                used = self.cpu[name]
                used[0] += time.process_time() - cpu
                used[1] += self.meter.backend_cpu() - backends
                used[2] += 1

        return metered

    def per_digest(self, digests: int) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_ms": round(1000 * worker / digests, 3),
                "postgres_cpu_ms": round(1000 * backends / digests, 3),
                "calls": calls,
            }
            for name, (worker, backends, calls) in self.cpu.items()
        }


def compose_all(engine: Engine, settings: Settings) -> list[Planned]:
    matcher = PoolMatcher(settings, NOW, screen=ScreenedRanker(settings))
    with Session(engine) as session:
        subs = session.scalars(
            select(Subscription)
            .order_by(Subscription.id)
            .options(
                selectinload(Subscription.subscriber),
                selectinload(Subscription.profile).selectinload(Profile.interests),
                selectinload(Subscription.profile).selectinload(Profile.feedback),
            )
        ).all()
        periods = {sub.id: latest_slot(Schedule.of(sub), NOW).period for sub in subs}
        digests: dict[int, Digest] = {}
        for start in range(0, len(subs), 500):
            digests.update(matcher.compose(session, subs[start : start + 500], periods))
    return [Planned(sub.id, periods[sub.id], digests[sub.id]) for sub in subs]


def steps(engine: Engine, settings: Settings, planned: list[Planned]) -> dict[str, Any]:
    """CPU ms per digest of each step of the delivery step, the database left out."""
    with Session(engine) as session:
        subs = {
            sub.id: sub
            for sub in session.scalars(
                select(Subscription).options(
                    selectinload(Subscription.profile).selectinload(Profile.interests)
                )
            )
        }
        pairs = [(subs[plan.subscription_id], plan.digest) for plan in planned if plan.digest is not None]
        pairs = [(sub, digest) for sub, digest in pairs if digest.items]
        n = len(pairs)

        def cpu_ms(work: Callable[[], object]) -> float:
            start = time.process_time()
            work()
            return 1000 * (time.process_time() - start) / n

        channel = EmailChannel(settings)
        try:
            channel.send(*pairs[0])  # templates compiled, connection open: not measured
            links = cpu_ms(
                lambda: [build_digest(sub, d.period, d.items, now=NOW, settings=settings) for sub, d in pairs]
            )
            render = cpu_ms(lambda: [render_digest_email(d, recipient=sub.address) for sub, d in pairs])
            built: list[Any] = []
            message = cpu_ms(lambda: built.extend(channel.digest_message(sub, d) for sub, d in pairs))
            smtp = cpu_ms(lambda: [channel.send_message(m) for m in built])
        finally:
            channel.close()
    figures = {"links": links, "render": render, "mime": message - render, "smtp": smtp}
    figures["total"] = sum(figures.values())
    return {
        "digests": n,
        "bytes_per_message": round(sum(len(m.data) for m in built) / n),
        "cpu_ms_per_digest": {name: round(value, 3) for name, value in figures.items()},
    }


def measure(engine: Engine, meter: Meter, sink_pid: int, work: Callable[[], list[str]]) -> dict[str, Any]:
    with engine.begin() as conn:
        conn.execute(delete(DeliveryPaper))
        conn.execute(delete(Delivery))
    statements, backend0, sink0 = meter.statements, meter.backend_cpu(), _run_seconds(sink_pid)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    statuses = work()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    backend = meter.backend_cpu() - backend0
    n = len(statuses)
    return {
        "digests": n,
        "sent": statuses.count("sent"),
        "empty": statuses.count("empty"),
        "other": n - statuses.count("sent") - statuses.count("empty"),
        "wall_s": round(wall, 2),
        "digests_per_s": round(n / wall, 1),
        "cpu_ms_per_digest": round(1000 * cpu / n, 2),
        "postgres_cpu_ms_per_digest": round(1000 * backend / n, 2),
        "smtp_sink_cpu_ms_per_digest": round(1000 * (_run_seconds(sink_pid) - sink0) / n, 2),
        "statements_per_digest": round((meter.statements - statements) / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=1_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--steps-only", action="store_true", help="only the per-step CPU (3.)")
    args = parser.parse_args()

    engine = fresh_database(args.pg, f"paperboy_deliver_bench_{os.getpid()}")
    load_subscriptions(engine, args.subscriptions, load_papers(engine, args.papers), 0)
    sink, port = counting_sink.start(Path(f"/tmp/paperboy-deliver-bench-sink-{os.getpid()}.log"))
    settings = Settings(
        database_url=str(engine.url),
        semantic=False,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"),
        smtp_rate_per_s=1e6,
        var_dir=Path("/tmp/paperboy-deliver-bench"),
    )
    try:
        planned = compose_all(engine, settings)
        engine.dispose()  # new connections from here on, so the meter knows every backend
        meter = Meter(engine)

        def single() -> list[str]:
            with ChannelPool(settings) as pool:
                return [
                    deliver(
                        engine,
                        plan.subscription_id,
                        plan.period,
                        channel=pool,
                        now=NOW,
                        settings=settings,
                        instance="bench",
                        digest=plan.digest,
                    ).status
                    for plan in planned
                ]

        def batched() -> list[str]:
            statuses: list[str] = []
            with ChannelPool(settings) as pool:
                for start in range(0, len(planned), 500):  # a pass's batch
                    for _, result in deliver_batch(
                        engine,
                        planned[start : start + 500],
                        channel=pool,
                        now=NOW,
                        settings=settings,
                        instance="bench",
                    ):
                        statuses.append(getattr(result, "status", "error"))
            return statuses

        results: dict[str, Any] = {}
        for name, work in () if args.steps_only else (("single", single), ("batched", batched)):
            results[name] = measure(engine, meter, sink.pid, work)
            print(f"{name}: {results[name]}", flush=True)
        if not args.steps_only:
            with Phases(meter) as phases:
                metered = measure(engine, meter, sink.pid, batched)
            results["batched_phases"] = phases.per_digest(metered["digests"])
            print(f"batched, by step: {results['batched_phases']}", flush=True)
        results["steps"] = steps(engine, settings, planned)
        print(f"steps: {results['steps']}", flush=True)
    finally:
        sink.kill()
        Path(f"/tmp/paperboy-deliver-bench-sink-{os.getpid()}.log").unlink(missing_ok=True)
        engine.dispose()
        drop_database(args.pg, str(engine.url.database))
    result = {
        "benchmark": "deliver",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": "PostgreSQL (loopback)",
        "papers": args.papers,
        "subscriptions": args.subscriptions,
        **results,
        "load_average_during_run": os.getloadavg()[0],
    }
    target = STEPS_RESULTS if args.steps_only else RESULTS  # a steps-only run keeps the full run's file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
