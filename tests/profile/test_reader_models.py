"""A profile's learned scorer, stored and retrained on each verdict (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import reader_models
from service.config import Settings
from service.digest import rank as digest_rank
from service.matching.semantic import embed_papers
from service.models import Delivery, DeliveryPaper, Paper, ReaderModelRow, Subscription
from service.profile import apply_spec, get_profile, load_specs, record_feedback
from tests.digest.helpers import add_paper, add_subscription
from tests.matching.test_reader_model import WordEmbedder

SETTINGS = Settings(_env_file=None, semantic=True)


@pytest.fixture
def words(monkeypatch: pytest.MonkeyPatch) -> WordEmbedder:
    """The service's embedder, replaced by the deterministic hashed-words one (no model load)."""
    embedder = WordEmbedder()
    monkeypatch.setattr(digest_rank, "embedder_for", lambda settings: embedder)
    return embedder


def _papers(db: Session, embedder: WordEmbedder | None = None) -> list[Paper]:
    """Twelve papers on two topics; with an embedder, their vectors stored as the digest path does."""
    papers = [
        add_paper(db, f"arxiv:2611.{i:05d}", f"graph {topic} paper {i}", f"we study graph {topic} {i}")
        for i, topic in enumerate(["coloring", "matching"] * 6)
    ]
    if embedder is not None:
        cache = digest_rank.DatabaseEmbeddingCache(db)
        embed_papers([digest_rank.paper_doc(p) for p in papers], embedder, cache)
    return papers


def _profile(db: Session, seed: Paper):  # type: ignore[no-untyped-def]
    (spec,) = load_specs(
        f"name: ada\ninterests:\n  - name: graphs\n    keywords: graph\n    seeds: ['paper:{seed.id}']\n",
        "ada.yaml",
    )
    return apply_spec(db, spec)


def test_each_verdict_retrains_and_stores_the_model(db: Session, words: WordEmbedder) -> None:
    papers = _papers(db)
    profile = _profile(db, papers[1])
    assert db.get(ReaderModelRow, profile.id) is None  # no verdict yet, nothing trained
    record_feedback(db, profile, papers[3].id, True, "web")
    row = db.get(ReaderModelRow, profile.id)
    assert row is not None and row.model == words.model_id and row.labels == 2  # seed + liked
    record_feedback(db, profile, papers[0].id, False, "web")
    db.refresh(row)
    assert row.labels == 3
    first = row.weights
    # Same history, same model: retraining changes nothing.
    reader_models.retrain(db, get_profile(db, "ada"), SETTINGS)
    db.refresh(row)
    assert row.weights == first
    # The model prefers the liked topic (matching) to the disliked one (coloring).
    model = reader_models.model_for(db, get_profile(db, "ada"), words, SETTINGS)
    assert model is not None
    vectors = words.embed([f"{p.title} {p.abstract}" for p in papers])
    scores = model.score(vectors)
    assert scores[1::2].mean() > scores[0::2].mean()


def test_papers_sent_and_never_marked_count_as_ignored(db: Session, words: WordEmbedder) -> None:
    papers = _papers(db)
    add_subscription(db, "ada@example.org", "graph")
    subscription = db.scalars(select(Subscription)).one()
    profile = subscription.profile
    profile.interests[0].seeds = [papers[1].id]
    db.flush()
    delivery = Delivery(subscription_id=subscription.id, period="2026-11-23", status="sent")
    db.add(delivery)
    db.flush()
    for rank_, paper in enumerate(papers[4:7]):
        db.add(
            DeliveryPaper(
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                paper_id=paper.id,
                rank=rank_,
                score=1.0,
            )
        )
    db.flush()
    record_feedback(db, profile, papers[4].id, True, "email")
    row = db.get(ReaderModelRow, profile.id)
    # seed + liked + two sent papers never marked (the marked one is not ignored)
    assert row is not None and row.labels == 4


def test_a_missing_or_outdated_model_is_trained_on_use(db: Session, words: WordEmbedder) -> None:
    papers = _papers(db, words)
    profile = _profile(db, papers[1])
    first = reader_models.model_for(db, profile, words, SETTINGS)
    assert first is not None and first.labels == 1  # trained on first use: the seed alone
    row = db.get(ReaderModelRow, profile.id)
    assert row is not None
    row.trained_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # older than the interest's last edit
    profile.interests[0].seeds = [papers[1].id, papers[3].id]
    db.flush()
    again = reader_models.model_for(db, profile, words, SETTINGS)
    assert again is not None and again.labels == 2
    assert not np.allclose(again.weights, first.weights)


def test_without_the_embedding_nothing_is_trained(db: Session) -> None:
    papers = _papers(db)
    profile = _profile(db, papers[1])
    assert reader_models.retrain(db, profile, Settings(_env_file=None, semantic=False)) is None
    assert db.get(ReaderModelRow, profile.id) is None


def test_a_failed_retraining_keeps_the_verdict(
    db: Session, words: WordEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = _papers(db, words)
    profile = _profile(db, papers[1])

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(reader_models, "train_reader_model", broken)
    record_feedback(db, profile, papers[3].id, True, "web")
    db.refresh(profile)
    assert [(f.paper_id, f.relevant) for f in profile.feedback] == [(papers[3].id, True)]
    assert db.get(ReaderModelRow, profile.id) is None
