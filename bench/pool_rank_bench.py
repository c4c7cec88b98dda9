"""Composing a pass's digests by pool: CPU per digest of PoolMatcher.compose, lexical or semantic.

    python bench/pool_rank_bench.py [--subscriptions 1000] [--papers 5000] [--semantic] [--cache-dir DIR]
                                    [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

The data of bench/scale_bench.py (dev papers cycled to --papers, dev keywords plus one word per
subscriber, all due now) in a fresh PostgreSQL database. The digests are composed as a dispatch pass
composes them (batches of claims.BATCH, the batch screen in front) without delivering them: this
process's CPU time (time.process_time) per digest, for the whole pass and for the batches after the
first (the first builds the screen, the pool's context and its neighbour graph). With --semantic,
paper and interest vectors are stored beforehand, as ingest and the screen leave them, and are
not part of the figure (their texts are embedded once per machine: a cache under --cache-dir). The
pass counts the texts MiniLM embeds while composing (there should be none: paper vectors are cached
at ingest, interest vectors stored) and the process's peak RSS. Writes
bench/results/pool_rank[_semantic].json and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_data import NOW, CachedEmbedder, drop_database, fresh_database, load_papers, load_subscriptions  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from service.config import Settings  # noqa: E402
from service.delivery.claims import BATCH  # noqa: E402
from service.delivery.pools import PoolMatcher, to_compose  # noqa: E402
from service.digest.rank import DatabaseEmbeddingCache, embedder_for, paper_doc  # noqa: E402
from service.matching.batch import BatchScreen, ScreenedRanker, SemanticScreen, load_interests  # noqa: E402
from service.matching.semantic import MiniLMEmbedder, embed_papers  # noqa: E402
from service.models import Paper, Subscription  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def store_vectors(session: Session, settings: Settings, cache_dir: Path) -> None:
    """Paper vectors (as ingest's cache leaves them) and interest vectors (as the screen stores them)."""
    model = embedder_for(settings)
    assert model is not None, "--semantic needs the [semantic] extra"
    embedder = CachedEmbedder(model, cache_dir / "pool-rank-vectors.npz")
    papers = list(session.scalars(select(Paper)))
    embed_papers([paper_doc(p) for p in papers], embedder, DatabaseEmbeddingCache(session))
    BatchScreen(load_interests(session, settings), SemanticScreen(session, embedder))  # type: ignore[arg-type]
    session.commit()
    embedder.save()


class ModelCalls:
    """Counts the texts MiniLM embeds (MiniLMEmbedder.embed wrapped) while it is entered."""

    def __init__(self) -> None:
        self.calls = self.texts = 0
        self._embed = MiniLMEmbedder.embed

    def __enter__(self) -> ModelCalls:
        original = self._embed

        def counted(embedder: MiniLMEmbedder, texts: Any) -> Any:
            self.calls += 1
            self.texts += len(texts)
            return original(embedder, texts)

        MiniLMEmbedder.embed = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        MiniLMEmbedder.embed = self._embed  # type: ignore[method-assign]


def compose_pass(engine: Any, settings: Settings) -> dict[str, Any]:
    matcher = PoolMatcher(settings, NOW, screen=ScreenedRanker(settings))
    with Session(engine) as session:
        ids = list(session.scalars(select(Subscription.id).order_by(Subscription.id)))
    batches: list[tuple[int, float, float]] = []
    items = empty = 0
    with ModelCalls() as model:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            with Session(engine) as session:
                subs = session.scalars(to_compose(chunk)).all()
                cpu, wall = time.process_time(), time.perf_counter()
                digests = matcher.compose(session, subs, {sub.id: "bench" for sub in subs})
                batches.append((len(subs), time.process_time() - cpu, time.perf_counter() - wall))
            items += sum(len(d.items) for d in digests.values())
            empty += sum(not d.items for d in digests.values())
    digests_n = sum(n for n, _, _ in batches)
    later = batches[1:] or batches
    return {
        "digests": digests_n,
        "items": items,
        "empty_digests": empty,
        "screened_out": matcher.screen.skipped if matcher.screen else 0,
        "model_calls_in_pass": model.calls,
        "texts_embedded_in_pass": model.texts,
        "cpu_s": round(sum(c for _, c, _ in batches), 2),
        "wall_s": round(sum(w for _, _, w in batches), 2),
        "cpu_ms_per_digest": round(1000 * sum(c for _, c, _ in batches) / digests_n, 2),
        "first_batch_cpu_s": round(batches[0][1], 2),
        "cpu_ms_per_digest_after_first_batch": round(
            1000 * sum(c for _, c, _ in later) / sum(n for n, _, _ in later), 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=1_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--semantic", action="store_true", help="with the sentence embedding")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "paperboy-scale-bench",
        help="paper and interest vectors by text, embedded once per machine",
    )
    parser.add_argument(
        "--pg", default=os.environ.get("PAPERBOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()

    engine = fresh_database(args.pg, f"paperboy_pool_rank_bench_{os.getpid()}")
    settings = Settings(
        database_url=str(engine.url), semantic=args.semantic, var_dir=Path("/tmp/paperboy-rank-bench")
    )
    try:
        words = load_papers(engine, args.papers)
        load_subscriptions(engine, args.subscriptions, words, 0)
        if args.semantic:
            with Session(engine) as session:
                store_vectors(session, settings, args.cache_dir)
        figures = compose_pass(engine, settings)
    finally:
        engine.dispose()
        drop_database(args.pg, str(engine.url.database))
    result = {
        "benchmark": "pool_rank",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "ranking": "semantic" if args.semantic else "lexical",
        "papers": args.papers,
        "subscriptions": args.subscriptions,
        "compose": figures,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_during_run": os.getloadavg()[0],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "pool_rank_semantic.json" if args.semantic else "pool_rank.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
