"""Learning over time: a labelled set replayed as N days, with a simulated reader's clicks.

The set's papers, in listing order (arXiv ids grow with time), are cut into N batches. Round 1
ranks batch 1 from the profile alone; after each round the reader marks the top 10 relevant
or not relevant, as the labels say, and the next round ranks the next batch with all the
feedback so far. The baselines get the same feedback:

* TF-IDF + SVM: retrained on seeds and liked papers (every other paper negative); before any
  positive (a keywords-only profile's first round) it ranks by Okapi BM25 on the keywords;
* embedding centroid: cosine to the mean vector of seeds, liked papers and, for a profile
  with keywords, the keywords' vector.

A round's figures average over the profiles with at least one relevant paper in the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .baselines import EmbeddingCentroid, OkapiBM25, TfidfSvm
from .evaluation import KINDS, Dataset, EvalProfile, ndcg_at, precision_at, reader_interest
from .interests import compile_interest
from .ranking import MatchContext, score_pool
from .reader_model import Background
from .semantic import Embedder, EmbeddingCache, embed_papers

__all__ = ["REPLAY_METHODS", "ReplayReport", "format_rounds", "replay"]

REPLAY_METHODS = ("TF-IDF + SVM", "embedding centroid", "paperboy")
MARKED = 10  # the reader marks the top 10 of each digest


@dataclass(slots=True)
class RoundResult:
    method: str
    kind: str
    round: int
    profiles: int
    precision_at_10: float
    ndcg_at_10: float


@dataclass(slots=True)
class ReplayReport:
    dataset: str
    rounds: int
    semantic: bool
    results: list[RoundResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def get(self, method: str, kind: str, round_: int) -> RoundResult | None:
        return next((r for r in self.results if (r.method, r.kind, r.round) == (method, kind, round_)), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Reader:
    """One simulated reader: a profile of one kind ranked by one method, and its clicks so far."""

    profile: EvalProfile
    kind: str
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> tuple[str, ...]:
        return self.profile.seeds if "seeds" in self.kind else ()

    @property
    def keywords(self) -> str:
        return self.profile.keywords if "keywords" in self.kind else ""


Ranker = Callable[[_Reader, np.ndarray], np.ndarray]  # (reader, batch rows) -> scores of those rows


def replay(
    dataset: Dataset,
    rounds: int,
    *,
    embedder: Embedder | None = None,
    cache: EmbeddingCache | None = None,
    methods: Sequence[str] = REPLAY_METHODS,
    kinds: Sequence[str] = KINDS,
    progress: Callable[[str], None] | None = None,
) -> ReplayReport:
    """nDCG@10 and P@10 per round, method and profile kind."""
    if not 1 <= rounds <= len(dataset.papers):
        raise ValueError(
            f"rounds: must be between 1 and the set's {len(dataset.papers)} papers, not {rounds}"
        )
    started = time.perf_counter()
    say = progress or (lambda message: None)
    report = ReplayReport(str(dataset.path), rounds, embedder is not None)
    papers = dataset.papers
    ids = [p.id for p in papers]
    row = {pid: i for i, pid in enumerate(ids)}
    embeddings = embed_papers(papers, embedder, cache) if embedder is not None else None
    batches = np.array_split(np.arange(len(papers)), rounds)
    bm25 = OkapiBM25(papers)
    try:
        svm: TfidfSvm | None = TfidfSvm(papers)
    except ImportError:
        svm = None
        report.notes.append("TF-IDF + SVM skipped: scikit-learn is not installed")
    centroid = EmbeddingCentroid(embeddings) if embeddings is not None else None
    if centroid is None:
        report.notes.append("embedding centroid skipped, paperboy lexical-only: [semantic] extra not used")
    # Sorted: a set's order follows the hash seed, and the references' order moves float sums.
    seeds_anywhere = sorted({s for p in dataset.profiles for s in p.seeds})
    keyword_vectors: dict[str, np.ndarray] = {}

    def keyword_vector(text: str) -> np.ndarray:
        assert embedder is not None
        if text not in keyword_vectors:
            keyword_vectors[text] = embedder.embed([text])[0]
        return keyword_vectors[text]

    rankers: dict[str, Ranker] = {}
    if svm is not None:

        def svm_rank(reader: _Reader, batch: np.ndarray) -> np.ndarray:
            positive = [row[i] for i in (*reader.seeds, *reader.liked)]
            if not positive:
                return bm25.scores(reader.keywords)[batch]
            return svm.scores(positive)[batch]

        rankers["TF-IDF + SVM"] = svm_rank
    if centroid is not None:

        def centroid_rank(reader: _Reader, batch: np.ndarray) -> np.ndarray:
            start = keyword_vector(reader.keywords) if reader.keywords else None
            return centroid.scores([row[i] for i in (*reader.seeds, *reader.liked)], start)[batch]

        rankers["embedding centroid"] = centroid_rank

    contexts: dict[int, tuple[MatchContext, Background | None]] = {}

    def paperboy_rank(reader: _Reader, batch: np.ndarray) -> np.ndarray:
        context, background = contexts[int(batch[0])]
        interest = reader_interest(
            reader.profile, reader.kind, context, background, reader.liked, reader.disliked
        )
        ranking = score_pool(compile_interest(interest), context)
        return np.where(ranking.allowed, ranking.scores, -np.inf)

    rankers["paperboy"] = paperboy_rank
    readers = {
        (method, kind): [
            _Reader(p, kind)
            for p in dataset.profiles
            if all(p.seeds if part == "seeds" else p.keywords.strip() for part in kind.split("+"))
        ]
        for method in methods
        if method in rankers
        for kind in kinds
    }
    for number, batch in enumerate(batches, 1):
        say(f"round {number}/{rounds}: {len(batch)} papers")
        if "paperboy" in methods:
            # The pool is the day's batch; seeds and papers of earlier days are only read.
            earlier = [papers[i] for i in range(int(batch[0]))]
            references = [papers[row[s]] for s in seeds_anywhere]
            contexts.clear()
            context = MatchContext(
                [papers[i] for i in batch], references=[*earlier, *references], embedder=embedder, cache=cache
            )
            # The background: every paper published so far, none of them labelled.
            known = embeddings[: int(batch[-1]) + 1] if embeddings is not None else None
            contexts[int(batch[0])] = (context, Background.of(known) if known is not None else None)
        batch_ids = [ids[i] for i in batch]
        for (method, kind), group in readers.items():
            totals, counted = np.zeros(2), 0
            for reader in group:
                scores = np.asarray(rankers[method](reader, batch), dtype=float).copy()
                shown = set(reader.seeds) | set(reader.liked) | set(reader.disliked)
                scores[[k for k, pid in enumerate(batch_ids) if pid in shown]] = -np.inf
                top = [batch_ids[k] for k in np.argsort(-scores, kind="stable")[:MARKED]]
                relevant = reader.profile.relevant & frozenset(batch_ids)
                if relevant:
                    totals += (precision_at(top, relevant), ndcg_at(top, relevant))
                    counted += 1
                for pid in top:
                    (reader.liked if pid in reader.profile.relevant else reader.disliked).append(pid)
            if counted:
                mean = totals / counted
                report.results.append(RoundResult(method, kind, number, counted, *map(float, mean)))
    report.seconds = time.perf_counter() - started
    return report


def format_rounds(report: ReplayReport) -> str:
    """One row per method and kind: nDCG@10 for each round, then P@10 for each round."""
    rounds = range(1, report.rounds + 1)
    head = f"{'kind':<15} {'method':<19}" + "".join(f" nDCG r{r:<2}" for r in rounds)
    head += "".join(f"  P@10 r{r:<2}" for r in rounds)
    lines = [head, "-" * len(head)]
    for kind in KINDS:
        for method in REPLAY_METHODS:
            cells = [report.get(method, kind, r) for r in rounds]
            if not any(cells):
                continue
            line = f"{kind:<15} {method:<19}"
            line += "".join(f" {c.ndcg_at_10:8.3f}" if c else f" {'n/a':>8}" for c in cells)
            line += "".join(f" {c.precision_at_10:9.3f}" if c else f" {'n/a':>9}" for c in cells)
            lines.append(line)
    return "\n".join(lines)
