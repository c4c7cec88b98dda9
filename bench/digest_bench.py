"""Digest benchmark: rendering and sending 10,000 digests; the whole delivery path on a database.

    python bench/digest_bench.py [--subscriptions 10000] [--pipeline 1000]

1. render: 10,000 ten-paper digests through Jinja2 + css-inline (subject, text, HTML), then also
   built into MIME messages (what EmailChannel sends).
2. smtp: a loopback aiosmtpd (its Sink handler, in its own process so it does not share our GIL)
   accepts the 10,000 messages: plain smtplib sending prebuilt messages (baseline), then paperboy
   rendering and sending them over one connection, then over --workers connections. "server_busy"
   is the share of a core the server process used: near 1.0, the server is what limits sending.
3. pipeline: `deliver()` for --pipeline subscriptions on SQLite: compose (rank), claim, record the
   papers, render, send, mark; the exactly-once bookkeeping included.

Writes bench/results/digest.json and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from service.channels.email import EmailChannel  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import make_engine, session_scope  # noqa: E402
from service.delivery import ChannelPool, deliver  # noqa: E402
from service.digest.model import Digest, DigestItem, DigestLinks, Segment  # noqa: E402
from service.digest.render import render_digest_email  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import Paper, Subscription  # noqa: E402
from service.subscription import SubscriptionRequest, create_subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "digest.json"
WORDS = [
    "model",
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
    "kernel",
]
TOPICS = ["sparse attention", "kv cache", "diffusion", "retrieval", "reasoning agent", "graph network"]
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize()


def synthetic_item(rng: random.Random, paper_id: int) -> DigestItem:
    topic = rng.choice(TOPICS)
    before, after = sentence(rng, 10, 25), sentence(rng, 15, 30)
    return DigestItem(
        paper_id=paper_id,
        title=f"{sentence(rng, 5, 12)} <{topic}> & more",
        url=f"https://arxiv.org/abs/2611.{paper_id:05d}",
        authors=[f"Author {rng.randint(1, 999)}" for _ in range(rng.randint(1, 8))],
        author_count=rng.randint(1, 20),
        organization=rng.choice([None, "ACME Research", "Université de Nulle Part"]),
        published_on=dt.date(2026, 11, rng.randint(1, 22)),
        upvotes=rng.choice([None, rng.randint(0, 300)]),
        code_url=rng.choice([None, f"https://github.com/example/repo{paper_id}"]),
        score=rng.random(),
        why=f"matched '{topic}'",
        snippet=[Segment(before + " "), Segment(topic, hit=True), Segment(" " + after + ".")],
        matched_terms=[topic],
        interest=topic,
    )


def synthetic_digests(count: int, per_digest: int = 10) -> list[Digest]:
    rng = random.Random(1)
    base = "https://paperboy.example"
    digests = []
    for n in range(count):
        items = [synthetic_item(rng, n * per_digest + i) for i in range(per_digest)]
        token = f"{n:08d}" * 10  # signed tokens are ~100 characters
        digests.append(
            Digest(
                subscription_id=n,
                period="2026-11-23",
                topic=rng.choice(TOPICS),
                items=items,
                links=DigestLinks(
                    manage=f"{base}/manage/{token}",
                    unsubscribe=f"{base}/unsubscribe/{token}",
                    unsubscribe_post=f"{base}/unsubscribe/{token}",
                    feedback={
                        i.paper_id: (f"{base}/feedback/r{token}", f"{base}/feedback/n{token}") for i in items
                    },
                ),
                generated_at=NOW,
            )
        )
    return digests


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else float("inf")


_SHARED: list[Digest] = []  # what forked render workers read


def _render_slice(bounds: tuple[int, int]) -> int:
    for digest in _SHARED[bounds[0] : bounds[1]]:
        render_digest_email(digest, recipient="reader@example.org")
    return bounds[1] - bounds[0]


def bench_render(digests: list[Digest], settings: Settings) -> dict[str, Any]:
    start = time.perf_counter()
    sizes = [len(render_digest_email(d, recipient="reader@example.org").html) for d in digests]
    rendered = time.perf_counter() - start
    cores = os.cpu_count() or 1
    _SHARED[:] = digests
    step = max(1, len(digests) // (cores * 8))
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        done = sum(pool.map(_render_slice, [(i, i + step) for i in range(0, len(digests), step)]))
    parallel = time.perf_counter() - start
    channel = EmailChannel(settings)
    sub = Subscription(id=1, channel="email", address="reader@example.org")
    start = time.perf_counter()
    payloads = [channel.digest_message(sub, d).data for d in digests]
    built = time.perf_counter() - start
    return {
        "digests": len(digests),
        "papers_per_digest": len(digests[0].items),
        "rendered_per_s": rate(len(digests), rendered),
        f"rendered_per_s_{cores}_processes": rate(done, parallel),
        "messages_built_per_s": rate(len(digests), built),
        "mean_html_bytes": round(sum(sizes) / len(sizes)),
        "mean_message_bytes": round(sum(map(len, payloads)) / len(payloads)),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    """aiosmtpd's Sink handler (accepts and discards) in a separate process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("aiosmtpd did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(pid: int, work: Callable[[], None]) -> tuple[float, float]:
    """Wall seconds of `work`, and the share of one core the SMTP server process was busy meanwhile."""
    cpu0, start = cpu_seconds(pid), time.perf_counter()
    work()
    wall = time.perf_counter() - start
    return wall, round((cpu_seconds(pid) - cpu0) / wall, 2)


def bench_smtp(digests: list[Digest], settings: Settings, workers: int) -> dict[str, Any]:
    """Messages accepted by the server; `server_busy` near 1.0 means the server is the limit."""
    proc, port = start_sink()
    n = len(digests)
    try:
        smtp_settings = settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}")})
        subs = [
            Subscription(id=d.subscription_id, channel="email", address=f"r{i}@example.org")
            for i, d in enumerate(digests)
        ]
        builder = EmailChannel(smtp_settings)
        built = [builder.digest_message(s, d) for s, d in zip(subs, digests, strict=True)]
        payloads = [message.data for message in built]

        def baseline() -> None:
            with smtplib.SMTP("127.0.0.1", port) as raw:
                for i, payload in enumerate(payloads):
                    raw.sendmail("digest@paperboy.localhost", [f"r{i}@example.org"], payload)

        def prebuilt() -> None:
            channel = EmailChannel(smtp_settings)
            for message in built:
                channel.send_message(message)
            channel.close()

        def paperboy(indices: range | list[int]) -> None:
            channel = EmailChannel(smtp_settings)  # one connection per worker, reused for its batch
            for i in indices:
                channel.send(subs[i], digests[i])
            channel.close()

        def parallel() -> None:
            threads = [
                threading.Thread(target=paperboy, args=(list(range(w, n, workers)),)) for w in range(workers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        base_wall, base_busy = timed(proc.pid, baseline)
        pre_wall, pre_busy = timed(proc.pid, prebuilt)
        one_wall, one_busy = timed(proc.pid, lambda: paperboy(range(n)))
        many_wall, many_busy = timed(proc.pid, parallel)
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "messages": n,
        "server": "aiosmtpd Sink handler, own process, loopback",
        "smtplib_prebuilt_baseline": {"accepted_per_s": rate(n, base_wall), "server_busy": base_busy},
        "paperboy_prebuilt_1_connection": {"accepted_per_s": rate(n, pre_wall), "server_busy": pre_busy},
        "paperboy_render_and_send_1_connection": {
            "accepted_per_s": rate(n, one_wall),
            "server_busy": one_busy,
        },
        f"paperboy_render_and_send_{workers}_connections": {
            "accepted_per_s": rate(n, many_wall),
            "server_busy": many_busy,
        },
    }


def bench_pipeline(count: int, settings: Settings, folder: Path) -> dict[str, Any]:
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(2)
    with session_scope(engine) as session:
        for n in range(300):
            topic = rng.choice(TOPICS)
            session.add(
                Paper(
                    key=f"arxiv:2611.{n:05d}",
                    title=f"{sentence(rng, 4, 10)} for {topic}",
                    abstract=f"{sentence(rng, 20, 40)} {topic}. {sentence(rng, 20, 40)}.",
                    authors=["A. Author", "B. Author"],
                    url=f"https://arxiv.org/abs/2611.{n:05d}",
                    first_seen_at=NOW - dt.timedelta(hours=rng.randint(1, 20)),
                )
            )
        ids = [
            create_subscription(
                session, SubscriptionRequest(email=f"reader{n}@example.org", interests=rng.sample(TOPICS, 2))
            ).id
            for n in range(count)
        ]
    ranker, ranker_name = _ranker()
    proc, port = start_sink()
    try:
        smtp_settings = settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}")})
        statuses: dict[str, int] = {}
        start = time.perf_counter()
        with ChannelPool(smtp_settings) as pool:
            for sub_id in ids:
                outcome = deliver(
                    engine,
                    sub_id,
                    "2026-11-23",
                    channel=pool,
                    now=NOW,
                    settings=smtp_settings,
                    instance="bench",
                    ranker=ranker,
                )
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(10)
        engine.dispose()
    return {
        "subscriptions": count,
        "candidate_papers": 300,
        "ranker": ranker_name,
        "database": "sqlite",
        "deliveries_per_s": rate(count, elapsed),
        "outcomes": statuses,
    }


def _ranker() -> tuple[Any, str]:
    """The product's ranker when it is there (service.digest.rank), else a keyword stand-in."""
    try:
        from service.digest.rank import rank_papers

        return rank_papers, "service.digest.rank.rank_papers"
    except ImportError:
        pass

    def keywords(
        session: Any, profile: Any, papers: list[Paper], *, interests: list[str] | None
    ) -> list[DigestItem]:
        items = []
        for paper in papers:
            text = f"{paper.title} {paper.abstract}".lower()
            hits = [i.name for i in profile.interests if i.keywords.lower() in text]
            if hits:
                items.append(
                    DigestItem(
                        paper.id,
                        paper.title,
                        paper.url,
                        list(paper.authors),
                        None,
                        None,
                        None,
                        None,
                        None,
                        float(len(hits)),
                        f"matched '{hits[0]}'",
                        [Segment(paper.abstract[:200])],
                        hits,
                        hits[0],
                    )
                )
        return sorted(items, key=lambda i: -i.score)

    return keywords, "bench keyword stand-in (service/digest/rank.py absent)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="parallel SMTP connections in the last run")
    parser.add_argument(
        "--pipeline", type=int, default=1_000, help="subscriptions for the deliver() run (0: skip)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(
            _env_file=None, var_dir=folder, smtp_rate_per_s=0, base_url="https://paperboy.example"
        )
        digests = synthetic_digests(args.subscriptions)
        results: dict[str, Any] = {
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
            },
            "date": dt.date.today().isoformat(),
            "render": bench_render(digests, settings),
            "smtp": bench_smtp(digests, settings, args.workers),
        }
        if args.pipeline:
            results["pipeline"] = bench_pipeline(args.pipeline, settings, folder)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
