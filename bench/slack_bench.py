"""Slack benchmark: digests posted through the real slack-sdk to the loopback Slack server.

    python bench/slack_bench.py [--channels 400] [--paced-channels 60] [--workers 32] [--wide-channels 200]

The server (tests/slack/fake_slack.py) runs in its own process, so it does not share our GIL, and
enforces Slack's limit itself: a channel that gets a second message within a second is answered 429
with a Retry-After, and counted as a violation.

1. render: ten-paper digests built as Block Kit messages (slack_sdk models, validated) per second.
2. fan-out: one ten-paper digest to each of --channels channels from --workers threads sharing one
   SlackChannel: messages posted per second when every message goes to a different channel.
3. paced: --paced-channels digests of 40 papers (a parent message and 3 thread replies each), so each
   channel receives 4 messages: with paperboy's per-channel pacer (1 message/s per channel), and again
   without it, when only the server's 429s and Retry-After keep the limit; then --wide-channels
   such digests from --wide-workers threads.

Writes bench/results/slack.json and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.channels.slack import SlackChannel  # noqa: E402
from service.channels.slack_blocks import digest_messages  # noqa: E402
from service.channels.slack_pacing import ChannelPacer  # noqa: E402
from service.config import Settings  # noqa: E402
from service.models import Subscription  # noqa: E402
from tests.slack.fake_slack import BOT_TOKEN  # noqa: E402
from tests.slack.helpers import make_digest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "slack.json"


class Server:
    """The fake Slack server in a child process; stops when its standard input closes."""

    def __init__(self, rate_interval: float, tolerance: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.slack.fake_slack", str(rate_interval), str(tolerance)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base = self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/_stats", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def settings_for(server: Server, interval: float) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key="bench-secret",  # type: ignore[arg-type]
        slack_bot_token=BOT_TOKEN,  # type: ignore[arg-type]
        slack_api_url=server.base + "/api/",
        slack_rate_per_channel_s=interval,
        slack_attempts=10,
        slack_max_wait_s=30.0,
    )


def bench_render(count: int) -> dict[str, Any]:
    settings = Settings(_env_file=None, secret_key="bench-secret")  # type: ignore[call-arg, arg-type]
    digests = [make_digest(10, subscription_id=n) for n in range(count)]
    start = time.perf_counter()
    sizes = [len(json.dumps(m.blocks)) for d in digests for m in digest_messages(d, settings)]
    elapsed = time.perf_counter() - start
    return {
        "digests": count,
        "papers_per_digest": 10,
        "rendered_per_s": round(count / elapsed, 1),
        "mean_blocks_json_bytes": round(sum(sizes) / len(sizes)),
    }


def post_all(
    server: Server, channels: int, papers: int, workers: int, interval: float, paced: bool, tag: str
) -> dict[str, Any]:
    """One scenario; `tag` keeps its channels apart from the other scenarios' (the server remembers)."""
    settings = settings_for(server, interval)
    pacer = ChannelPacer(interval if paced else 0.0)
    channel = SlackChannel(settings, pacer=pacer)
    subs = [Subscription(id=n, channel="slack", address=f"C{tag}{n:07d}") for n in range(channels)]
    jobs = [(sub, make_digest(papers, subscription_id=sub.id)) for sub in subs]
    before = server.stats()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ids = list(pool.map(lambda job: channel.send(*job), jobs))
    elapsed = time.perf_counter() - start
    after = server.stats()
    posted = after["posted"] - before["posted"]
    assert all(" partial" not in i for i in ids), "some thread replies were not posted"
    return {
        "channels": channels,
        "papers_per_digest": papers,
        "messages_per_digest": len(digest_messages(jobs[0][1], settings)),
        "workers": workers,
        "paperboy_pacer": paced,
        "messages_posted": posted,
        "thread_replies": after["threads"] - before["threads"],
        "seconds": round(elapsed, 2),
        "messages_per_s": round(posted / elapsed, 1),
        "requests": after["requests"] - before["requests"],
        "answered_429": after["rate_violations"] - before["rate_violations"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=400)
    parser.add_argument("--paced-channels", type=int, default=60)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--wide-channels", type=int, default=200)
    parser.add_argument("--wide-workers", type=int, default=100)
    parser.add_argument("--render", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between messages to a channel")
    parser.add_argument("--tolerance", type=float, default=0.0, help="early arrival the server forgives")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "date": dt.date.today().isoformat(),
        "server": {
            "rate_limit": f"1 message per {args.interval:g}s per channel, 429 + Retry-After beyond",
            "tolerance_s": args.tolerance,
        },
    }
    results["render"] = bench_render(args.render)
    print("render", results["render"], flush=True)
    server = Server(args.interval, args.tolerance)
    try:
        fan_out = post_all(server, args.channels, 10, args.workers, args.interval, paced=True, tag="F")
        results["fan_out"] = fan_out
        print("fan-out", fan_out, flush=True)
        paced = post_all(server, args.paced_channels, 40, args.workers, args.interval, paced=True, tag="P")
        # The best any client can do: each channel's 4 messages need 3 intervals; `workers` channels
        # are in flight at once.
        rounds = -(-args.paced_channels // args.workers)
        paced["bound_messages_per_s"] = round(paced["messages_posted"] / (rounds * 3 * args.interval), 1)
        results["paced"] = paced
        print("paced", paced, flush=True)
        wide = post_all(server, args.wide_channels, 40, args.wide_workers, args.interval, paced=True, tag="W")
        rounds = -(-args.wide_channels // args.wide_workers)
        wide["bound_messages_per_s"] = round(wide["messages_posted"] / (rounds * 3 * args.interval), 1)
        results["paced_wide"] = wide
        print("paced, wide", wide, flush=True)
        unpaced = post_all(server, args.paced_channels, 40, args.workers, args.interval, paced=False, tag="U")
        results["unpaced_429_retry"] = unpaced
        print("without pacer", unpaced, flush=True)
    finally:
        server.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
