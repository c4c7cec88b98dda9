"""CPU seconds and peak memory of other processes, read from Linux /proc while they run.

A process's figures vanish with it, and PostgreSQL backends and Celery's pool children come and go,
so `Watch` samples every process of interest in a thread and keeps the last figures of each pid.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Tracked:
    start_cpu: float  # at first sight (0 for a process born after the watch started)
    cpu: float
    peak_rss_mb: float

    @property
    def used(self) -> float:
        return self.cpu - self.start_cpu


@dataclass
class Watch:
    """Samples groups of pids: `groups` maps a name to a function returning the pids to track now."""

    groups: dict[str, Callable[[], list[int]]]
    interval_s: float = 0.5
    seen: dict[str, dict[int, Tracked]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _first: bool = True

    def sample(self) -> None:
        for name, pids in self.groups.items():
            group = self.seen.setdefault(name, {})
            for pid in pids():
                cpu, rss = cpu_seconds(pid), peak_rss_mb(pid)
                if cpu is None:
                    continue
                if pid not in group:
                    group[pid] = Tracked(cpu if self._first else 0.0, cpu, rss or 0.0)
                group[pid].cpu = cpu
                group[pid].peak_rss_mb = max(group[pid].peak_rss_mb, rss or 0.0)
        self._first = False

    def start(self) -> Watch:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def cpu(self, name: str) -> float:
        return sum(t.used for t in self.seen.get(name, {}).values())

    def peak_rss(self, name: str) -> list[float]:
        return [round(t.peak_rss_mb) for t in self.seen.get(name, {}).values()]
