"""What digests actually send, measured on a labelled set (`paperboy eval digests DIR`).

Each profile gets one digest of the whole set (or, with `day_size`, one a "day": the papers cut in
their own order, arXiv ids being chronological), ranked as the dispatcher ranks (evidence required,
threshold 0, top_k 20, then `max_papers`), once without and once with the cut-off of
service/digest/cutoff.py. Reported per profile kind: the precision of what is sent (relevant papers
sent / papers sent), the share of digests that are empty, and the papers a digest holds on average.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from service.digest.cutoff import cut_off
from service.matching.evaluation import KINDS, Dataset, EvalProfile
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import MatchContext, rank
from service.matching.semantic import Embedder, EmbeddingCache

MAX_PAPERS = 10
TOP_K = 20  # the dispatcher's default_top_k
RULES = ("no cut-off", "cut-off")


@dataclass(slots=True)
class DigestFigures:
    rule: str
    kind: str
    digests: int = 0
    empty: int = 0
    sent: int = 0
    relevant_sent: int = 0

    @property
    def precision(self) -> float:
        return self.relevant_sent / self.sent if self.sent else 0.0

    @property
    def empty_share(self) -> float:
        return self.empty / self.digests if self.digests else 0.0

    @property
    def mean_size(self) -> float:
        return self.sent / self.digests if self.digests else 0.0


@dataclass(slots=True)
class DigestReport:
    dataset: str
    days: int
    day_size: int
    profiles: int
    semantic: bool
    figures: list[DigestFigures] = field(default_factory=list)
    seconds: float = 0.0

    def get(self, rule: str, kind: str) -> DigestFigures | None:
        return next((f for f in self.figures if f.rule == rule and f.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for entry, figures in zip(data["figures"], self.figures, strict=True):
            entry.update(
                precision=figures.precision, empty_share=figures.empty_share, mean_size=figures.mean_size
            )
        return data


def _interest(profile: EvalProfile, kind: str) -> Interest:
    return Interest(
        profile.id,
        keywords=profile.keywords if "keywords" in kind else "",
        seeds=profile.seeds if "seeds" in kind else (),
        threshold=0.0,
        top_k=TOP_K,
    )


def measure_digests(
    dataset: Dataset,
    *,
    embedder: Embedder | None = None,
    cache: EmbeddingCache | None = None,
    profiles: Sequence[EvalProfile] | None = None,
    day_size: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> DigestReport:
    """Every profile's daily digests over the set, without and with the cut-off."""
    started = time.perf_counter()
    chosen = list(profiles if profiles is not None else dataset.profiles)
    by_id = {paper.id: paper for paper in dataset.papers}
    size = day_size or len(dataset.papers)
    days = [dataset.papers[i : i + size] for i in range(0, len(dataset.papers), size)]
    report = DigestReport(str(dataset.path), len(days), size, len(chosen), embedder is not None)
    figures = {(rule, kind): DigestFigures(rule, kind) for rule in RULES for kind in KINDS}
    seeds = {seed for profile in chosen for seed in profile.seeds}
    say = progress or (lambda message: None)
    for number, day in enumerate(days, 1):
        say(f"day {number} of {len(days)}: {len(day)} papers, {len(chosen)} profiles")
        in_day = {paper.id for paper in day}
        # Seeds outside the day's pool are read as references, as a dispatch reads stored seeds (every
        # profile's at once: one index a day instead of one per profile).
        references = [by_id[s] for s in sorted(seeds - in_day)]
        context = MatchContext(day, references=references, embedder=embedder, cache=cache)
        for profile in chosen:
            for kind in KINDS:
                if ("seeds" in kind and not profile.seeds) or ("keywords" in kind and not profile.keywords):
                    continue
                compiled = compile_interest(_interest(profile, kind))
                matches = rank(compiled, context, explained=False)
                sent = {
                    "no cut-off": matches[:MAX_PAPERS],
                    "cut-off": cut_off(matches, seeded="seeds" in kind)[:MAX_PAPERS],
                }
                for rule, papers in sent.items():
                    tally = figures[(rule, kind)]
                    tally.digests += 1
                    tally.empty += not papers
                    tally.sent += len(papers)
                    tally.relevant_sent += sum(1 for m in papers if m.paper_id in profile.relevant)
    report.figures = [f for f in figures.values() if f.digests]
    report.seconds = time.perf_counter() - started
    return report


def format_digest_table(report: DigestReport) -> str:
    """Rules as rows, profile kinds as column groups: precision sent, empty digests, mean size."""
    head = f"{'rule':<12}" + "".join(f" | {kind:^24}" for kind in KINDS)
    sub = f"{'':<12}" + "".join(f" | {'precision':>9} {'empty':>6} {'size':>6}" for _ in KINDS)
    lines = [head, sub, "-" * len(sub)]
    for rule in RULES:
        cells = []
        for kind in KINDS:
            f = report.get(rule, kind)
            cells.append(
                f" | {f.precision:9.3f} {f.empty_share:6.1%} {f.mean_size:6.2f}" if f else f" | {'n/a':^24}"
            )
        lines.append(f"{rule:<12}" + "".join(cells))
    return "\n".join(lines)
