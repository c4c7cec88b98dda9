"""Embed newly stored papers right after ingest, so the first digest finds their vectors cached.

With the [semantic] extra, a paper's sentence embedding is what semantic matching compares. Computed
lazily, the first `digest preview` after a large ingest embedded every paper itself (minutes, without
a word). Here ingest does it, in batches that each commit (an interrupted run keeps what it did), and
reports progress; ranking then reads the same rows through DatabaseEmbeddingCache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, func, select

from service.config import Settings
from service.db import session_factory
from service.models import Paper, PaperEmbedding

log = logging.getLogger("paperboy.embeddings")
BATCH = 64

Progress = Callable[[int, int], None]  # (papers embedded so far, papers to embed)


@dataclass(frozen=True)
class EmbeddingRun:
    papers: int
    seconds: float


def _missing(model_id: str):  # type: ignore[no-untyped-def]
    """Papers with no vector of this model yet (any text version: a changed abstract is re-embedded
    when it is ranked)."""
    return ~exists().where(PaperEmbedding.paper_id == Paper.id, PaperEmbedding.model.like(f"{model_id}#%"))


def embed_new_papers(
    engine: Engine, settings: Settings, progress: Progress | None = None, embedder: Any = None
) -> EmbeddingRun | None:
    """Embed every stored paper that has no vector yet; None when semantic matching is off or absent.

    `embedder` stands in for the settings' model (the scale benchmark's on-disk cache of it)."""
    from service.digest.rank import DatabaseEmbeddingCache, embedder_for, paper_doc
    from service.matching.semantic import embed_papers

    embedder = embedder if embedder is not None else embedder_for(settings)
    if embedder is None:
        return None
    sessions = session_factory(engine)
    with sessions() as session:
        total = (
            session.scalar(select(func.count()).select_from(Paper).where(_missing(embedder.model_id))) or 0
        )
    started = time.monotonic()
    done, after = 0, 0
    while done < total:
        with sessions() as session, session.begin():
            papers = session.scalars(
                select(Paper)
                .where(_missing(embedder.model_id), Paper.id > after)
                .order_by(Paper.id)
                .limit(BATCH)
            ).all()
            if not papers:
                break
            embed_papers([paper_doc(p) for p in papers], embedder, DatabaseEmbeddingCache(session))
        after = papers[-1].id
        done += len(papers)
        if progress is not None:
            progress(done, total)
    run = EmbeddingRun(done, time.monotonic() - started)
    if done:
        log.info("event=embed papers=%d seconds=%.1f model=%s", done, run.seconds, embedder.model_id)
    return run
