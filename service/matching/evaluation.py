"""Measured relevance: paperboy against the usual alternatives on a labelled set.

A set is a directory with ``papers.jsonl`` (id, title, abstract, authors) and
``profiles.jsonl`` (id, keywords, seeds, relevant). Every method ranks all papers except
the profile's seeds; precision@10, nDCG@10 (binary gains) and recall@50 are averaged over
profiles, for three kinds of profile: keywords only, seeds only, keywords and seeds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import EmbeddingCosine, KeywordAlert, OkapiBM25, SemanticSearch, TfidfSvm, zsum
from .documents import PaperDoc
from .interests import Interest, compile_interest
from .mixed_readers import MixedResult, score_mixed_readers
from .ranking import MatchContext, score_pool
from .reader_model import Background, train_reader_model
from .semantic import Embedder, EmbeddingCache, embed_papers

__all__ = [
    "KINDS",
    "METHODS",
    "Dataset",
    "DatasetError",
    "EvalProfile",
    "EvalReport",
    "MethodResult",
    "evaluate",
    "format_table",
    "load_dataset",
    "ndcg_at",
    "precision_at",
    "recall_at",
]

KINDS = ("keywords", "seeds", "keywords+seeds")
METHODS = (
    "keyword alert",
    "Okapi BM25",
    "semantic search",
    "semantic + BM25",
    "TF-IDF + SVM",
    "embedding cosine",
    "paperboy",
)
# Which profile parts each method can use; a method that has none of them skips the kind.
_USES = {
    "keyword alert": {"keywords"},
    "Okapi BM25": {"keywords"},
    "semantic search": {"keywords"},
    "semantic + BM25": {"keywords"},
    "TF-IDF + SVM": {"seeds"},
    "embedding cosine": {"seeds"},
}
DEPTH = 50


class DatasetError(ValueError):
    """A set that cannot be evaluated; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class EvalProfile:
    id: str
    keywords: str
    seeds: tuple[str, ...]
    relevant: frozenset[str]


@dataclass(slots=True)
class Dataset:
    path: Path
    papers: list[PaperDoc]
    profiles: list[EvalProfile]


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object")
            yield number, record


def _field(record: dict[str, Any], name: str, kind: type, where: str, default: Any = None) -> Any:
    value = record.get(name, default)
    if value is None or not isinstance(value, kind):
        raise DatasetError(f"{where}: field {name!r} must be a {kind.__name__}")
    if kind is list and not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{where}: field {name!r} must be a list of strings")
    return value


def load_dataset(directory: Path) -> Dataset:
    """Read and check a set; every paper id a profile names must exist."""
    papers: list[PaperDoc] = []
    known: set[str] = set()
    for number, record in _lines(directory / "papers.jsonl"):
        where = f"{directory / 'papers.jsonl'}:{number}"
        paper_id = _field(record, "id", str, where)
        if paper_id in known:
            raise DatasetError(f"{where}: duplicate paper id {paper_id!r}")
        known.add(paper_id)
        title = _field(record, "title", str, where)
        abstract = _field(record, "abstract", str, where, "")
        authors = tuple(_field(record, "authors", list, where, []))
        papers.append(PaperDoc(paper_id, title, abstract, authors))
    profiles: list[EvalProfile] = []
    for number, record in _lines(directory / "profiles.jsonl"):
        where = f"{directory / 'profiles.jsonl'}:{number}"
        seeds = tuple(_field(record, "seeds", list, where, []))
        relevant = frozenset(_field(record, "relevant", list, where, []))
        for name, ids in (("seeds", seeds), ("relevant", relevant)):
            missing = sorted(set(ids) - known)
            if missing:
                raise DatasetError(f"{where}: field {name!r} names unknown paper {missing[0]!r}")
        keywords = _field(record, "keywords", str, where, "")
        profiles.append(EvalProfile(str(_field(record, "id", str, where)), keywords, seeds, relevant))
    if not papers or not profiles:
        raise DatasetError(f"{directory}: needs at least one paper and one profile")
    return Dataset(directory, papers, profiles)


def precision_at(ranked: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    return sum(1 for pid in ranked[:k] if pid in relevant) / k


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    gains = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return gains / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int = DEPTH) -> float:
    return sum(1 for pid in ranked[:k] if pid in relevant) / len(relevant) if relevant else 0.0


@dataclass(slots=True)
class MethodResult:
    method: str
    kind: str
    profiles: int
    precision_at_10: float
    ndcg_at_10: float
    recall_at_50: float


@dataclass(slots=True)
class EvalReport:
    dataset: str
    papers: int
    profiles: int
    semantic: bool
    results: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mixed: list[MixedResult] = field(default_factory=list)  # three-topic readers (mixed_readers.py)

    def get(self, method: str, kind: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method and r.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Scorer = Callable[[EvalProfile, str, list[int]], np.ndarray | None]


def reader_interest(
    profile: EvalProfile,
    kind: str,
    context: MatchContext,
    background: Background | None,
    liked: Sequence[str] = (),
    disliked: Sequence[str] = (),
) -> Interest:
    """The profile as paperboy stores it for this kind, with the model its labels train.

    Trained as the service trains it (service/reader_models.py): seeds and liked papers
    positive, disliked negative, the unlabelled papers of the set as the background.
    """
    seeds = profile.seeds if "seeds" in kind else ()
    model = None
    if background is not None and context.embeddings is not None and context.embedder is not None:
        vectors = context.embeddings
        model = train_reader_model(
            context.embedder.model_id,
            vectors[context.rows([*seeds, *liked])],
            vectors[context.rows(disliked)],
            background,
        )
    return Interest(
        profile.id,
        keywords=profile.keywords if "keywords" in kind else "",
        seeds=seeds,
        liked=tuple(liked),
        disliked=tuple(disliked),
        model=model,
    )


def _scorers(
    dataset: Dataset, embeddings: np.ndarray | None, context: MatchContext, notes: list[str]
) -> dict[str, Scorer]:
    alert = KeywordAlert(dataset.papers)
    try:
        svm: TfidfSvm | None = TfidfSvm(dataset.papers)
    except ImportError:
        svm = None
        notes.append("TF-IDF + SVM skipped: scikit-learn is not installed (pip install 'paperboy[dev]')")
    cosine = EmbeddingCosine(embeddings) if embeddings is not None else None
    bm25 = OkapiBM25(dataset.papers)

    background = Background.of(context.embeddings) if context.embeddings is not None else None

    def paperboy(profile: EvalProfile, kind: str, seeds: list[int]) -> np.ndarray:
        interest = reader_interest(profile, kind, context, background)
        ranking = score_pool(compile_interest(interest), context)
        return np.where(ranking.allowed, ranking.scores, -np.inf)

    scorers: dict[str, Scorer] = {
        "keyword alert": lambda p, kind, seeds: alert.scores(p.keywords),
        "paperboy": paperboy,
    }
    if svm is not None:
        scorers["TF-IDF + SVM"] = lambda p, kind, seeds: svm.scores(seeds)
    scorers["Okapi BM25"] = lambda p, kind, seeds: bm25.scores(p.keywords)
    if cosine is not None and embeddings is not None and context.embedder is not None:
        scorers["embedding cosine"] = lambda p, kind, seeds: cosine.scores(seeds)
        search = SemanticSearch(embeddings, context.embed_text)
        scorers["semantic search"] = lambda p, kind, seeds: search.scores(p.keywords)
        scorers["semantic + BM25"] = lambda p, kind, seeds: zsum(
            search.scores(p.keywords), bm25.scores(p.keywords)
        )
    return scorers


def evaluate(
    dataset: Dataset,
    *,
    embedder: Embedder | None = None,
    cache: EmbeddingCache | None = None,
    methods: Sequence[str] = METHODS,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Run every method on every applicable profile kind; ``embedder=None`` is lexical-only."""
    started = time.perf_counter()
    report = EvalReport(str(dataset.path), len(dataset.papers), len(dataset.profiles), embedder is not None)
    say = progress or (lambda message: None)
    embeddings = None
    if embedder is not None:
        say(f"embedding {len(dataset.papers)} papers (cached after the first run)")
        embeddings = embed_papers(dataset.papers, embedder, cache)
    else:
        report.notes.append(
            "embedding cosine and semantic search skipped, paperboy ran lexical-only: "
            "[semantic] extra not used"
        )
    context = MatchContext(dataset.papers, embedder=embedder, cache=cache)
    row = {paper.id: i for i, paper in enumerate(dataset.papers)}
    ids = [paper.id for paper in dataset.papers]
    scorers = _scorers(dataset, embeddings, context, report.notes)
    for method in methods:
        if method not in scorers:
            continue
        say(f"ranking with {method}")
        for kind in KINDS:
            needs = set(kind.split("+"))
            usable = [
                p
                for p in dataset.profiles
                if ("seeds" not in needs or p.seeds) and ("keywords" not in needs or p.keywords.strip())
            ]
            if method in _USES and not (_USES[method] & needs):
                continue
            totals = np.zeros(3)
            for profile in usable:
                seeds = [row[s] for s in profile.seeds]
                scores = np.asarray(scorers[method](profile, kind, seeds), dtype=float).copy()
                scores[[row[s] for s in profile.seeds]] = -np.inf  # seeds are never recommended back
                top = np.argsort(-scores, kind="stable")[:DEPTH]
                ranked = [ids[i] for i in top]
                totals += (
                    precision_at(ranked, profile.relevant),
                    ndcg_at(ranked, profile.relevant),
                    recall_at(ranked, profile.relevant),
                )
            if usable:
                mean = totals / len(usable)
                report.results.append(MethodResult(method, kind, len(usable), *map(float, mean)))
    if "paperboy" in methods:
        say("ranking for three-topic readers")
        report.mixed = score_mixed_readers(dataset.profiles, context)
    report.seconds = time.perf_counter() - started
    return report


def format_table(report: EvalReport) -> str:
    """Methods as rows, profile kinds as column groups: P@10, nDCG@10, R@50."""
    head = f"{'method':<18}" + "".join(f" | {kind:^22}" for kind in KINDS)
    sub = f"{'':<18}" + "".join(f" | {'P@10':>6} {'nDCG@10':>7} {'R@50':>6}" for _ in KINDS)
    lines = [head, sub, "-" * len(sub)]
    for method in METHODS:
        cells = []
        for kind in KINDS:
            result = report.get(method, kind)
            cells.append(
                f" | {result.precision_at_10:6.3f} {result.ndcg_at_10:7.3f} {result.recall_at_50:6.3f}"
                if result
                else f" | {'n/a':^22}"
            )
        if any("n/a" not in c for c in cells):
            lines.append(f"{method:<18}" + "".join(cells))
    for mixed in report.mixed:
        lines.append(
            f"{mixed.readers} three-topic readers, paperboy, {mixed.order}: "
            f"nDCG@10 {mixed.ndcg_at_10:.3f}, interest coverage@10 {mixed.coverage_at_10:.3f}"
        )
    return "\n".join(lines)
