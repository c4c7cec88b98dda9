"""How quickly the `paperboy` command answers: help, a simple command, and SIGTERM to an idle `run`.

    python bench/cli_responsiveness.py [--runs 5] [--source DIR]

--source runs another checkout's code (e.g. an exported older commit) for a before/after comparison.
Prints the medians and writes bench/results/cli_responsiveness.json. Each figure is wall time of a
fresh process, so it includes Python's own start-up (reported as `python -c pass`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = "from service.cli import main; main()"


def _env(source: Path, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMTP_URL")}
    env.update(PYTHONPATH=str(source), VAR_DIR=str(var), COLUMNS="80")
    return env


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, capture_output=True, check=False, timeout=300)
    return time.perf_counter() - start


def _sigterm_to_exit(env: dict[str, str], cwd: Path) -> float:
    """Seconds from SIGTERM to the exit of a `paperboy run` that leads and has nothing to do."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "run"], env=env, cwd=cwd, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "holds the scheduler lease" in line:
            break
    time.sleep(3)  # the first ingest and dispatch passes run at start; let them finish
    start = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()
    proc.wait(timeout=300)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", type=Path, default=REPO, help="checkout whose code to run")
    opts = parser.parse_args()
    source = opts.source.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = _env(source, cwd / "var")
        (cwd / "var").mkdir()
        subprocess.run(
            [sys.executable, "-c", PROGRAM, "db", "upgrade"],
            env=env,
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        measures = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "paperboy --help": [sys.executable, "-c", PROGRAM, "--help"],
            "paperboy status": [sys.executable, "-c", PROGRAM, "status"],
            "paperboy subscriptions list": [sys.executable, "-c", PROGRAM, "subscriptions", "list"],
        }
        figures = {
            name: statistics.median(_timed(args, env, cwd) for _ in range(opts.runs))
            for name, args in measures.items()
        }
        figures["SIGTERM to exit, idle paperboy run"] = statistics.median(
            _sigterm_to_exit(env, cwd) for _ in range(max(1, opts.runs // 2))
        )
    load = os.getloadavg()[0]
    for name, seconds in figures.items():
        print(f"{name:40s} {seconds:6.2f} s")
    print(f"(median of {opts.runs}; load average {load:.1f} on {os.cpu_count()} CPUs; code from {source})")
    out = REPO / "bench" / "results" / "cli_responsiveness.json"
    out.parent.mkdir(exist_ok=True)
    shown = "this checkout" if source == REPO else source.name  # no machine paths in results
    result = {"source": shown, "runs": opts.runs, "load_average": load, "seconds": figures}
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
