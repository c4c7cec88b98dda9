"""Each profile's learned scorer in the database: trained from its history, kept in reader_models.

A profile's history is its interests' seed papers and liked papers (positive), its disliked
papers (negative) and the papers its digests sent that it never marked (ignored, a weak
negative). :func:`retrain` refits the model from all of it in a few milliseconds (the vectors
come from paper_embeddings), so it runs on every verdict; :func:`model_for` gives the ranker
the stored model, retraining first when the profile changed since.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings, get_settings
from service.delivery.retention import delivered_items
from service.matching.reader_model import Background, ReaderModel, train_reader_model
from service.matching.semantic import Embedder, embed_papers, vector_from_bytes
from service.models import (
    Delivery,
    Feedback,
    Paper,
    PaperEmbedding,
    Profile,
    ReaderModelRow,
    Subscription,
    utcnow,
)

__all__ = ["BACKGROUND_PAPERS", "model_for", "retrain"]

log = logging.getLogger(__name__)

# The background: this many of the newest papers that already have a vector (none is embedded for it).
BACKGROUND_PAPERS = 2_000


def _history(session: Session, profile: Profile) -> tuple[list[int], list[int], list[int]]:
    """Paper ids: positive (seeds, liked), negative (disliked), ignored (sent, never marked)."""
    verdicts = {
        paper_id: relevant
        for paper_id, relevant in session.execute(
            select(Feedback.paper_id, Feedback.relevant).where(Feedback.profile_id == profile.id)
        )
    }
    positive = list(dict.fromkeys([int(s) for i in profile.interests for s in i.seeds or ()]))
    positive += [p for p, relevant in verdicts.items() if relevant and p not in positive]
    negative = [p for p, relevant in verdicts.items() if not relevant and p not in positive]
    items = delivered_items()
    sent = session.scalars(
        select(items.c.paper_id)
        .join(Delivery, Delivery.id == items.c.delivery_id)
        .join(Subscription, Subscription.id == items.c.subscription_id)
        .where(Subscription.profile_id == profile.id, Delivery.status == "sent")
        .order_by(items.c.paper_id)
    )
    ignored = [p for p in dict.fromkeys(sent) if p not in verdicts and p not in positive]
    return positive, negative, ignored


def _vectors(session: Session, embedder: Embedder, paper_ids: Sequence[int]) -> np.ndarray:
    from service.digest.rank import DatabaseEmbeddingCache, paper_doc

    if not paper_ids:
        return np.zeros((0, embedder.dimension))
    papers = {p.id: p for p in session.scalars(select(Paper).where(Paper.id.in_(paper_ids)))}
    docs = [paper_doc(papers[i]) for i in paper_ids if i in papers]
    return embed_papers(docs, embedder, DatabaseEmbeddingCache(session))


def _background(session: Session, embedder: Embedder) -> Background:
    rows = session.execute(
        select(PaperEmbedding.vector)
        .join(Paper, Paper.id == PaperEmbedding.paper_id)
        .where(PaperEmbedding.model.startswith(f"{embedder.model_id}#"))
        .order_by(Paper.first_seen_at.desc(), Paper.id.desc())
        .limit(BACKGROUND_PAPERS)
    )
    vectors = [vector_from_bytes(v) for (v,) in rows]
    if not vectors:
        return Background.of(np.zeros((0, embedder.dimension)))
    return Background.of(np.stack(vectors))


def retrain(session: Session, profile: Profile, settings: Settings | None = None) -> ReaderModel | None:
    """Refit and store the profile's model; None (and no row) without the embedding or a positive."""
    from service.digest.rank import embedder_for

    embedder = embedder_for(settings or get_settings())
    stored = session.get(ReaderModelRow, profile.id)
    if embedder is None:
        return None
    positive, negative, ignored = _history(session, profile)
    model = train_reader_model(
        embedder.model_id,
        _vectors(session, embedder, positive),
        _vectors(session, embedder, negative),
        _background(session, embedder),
        ignored=_vectors(session, embedder, ignored),
    )
    if model is None:
        if stored is not None:
            session.delete(stored)
        session.flush()
        return None
    if stored is None:
        stored = ReaderModelRow(profile_id=profile.id)
        session.add(stored)
    stored.model = model.model_id
    stored.weights = model.to_bytes()
    stored.labels = model.labels
    stored.trained_at = utcnow()
    session.flush()
    return model


def model_for(
    session: Session, profile: Profile, embedder: Embedder, settings: Settings
) -> ReaderModel | None:
    """The stored model, retrained first if missing, of another embedding model, or older than an edit."""
    stored = session.get(ReaderModelRow, profile.id)
    edited = max((i.updated_at for i in profile.interests), default=None)
    fresh = stored is not None and stored.model == embedder.model_id
    if fresh and stored is not None and (edited is None or stored.trained_at >= edited):
        return ReaderModel.from_bytes(stored.model, stored.weights, stored.labels)
    if not any(i.seeds for i in profile.interests) and not any(f.relevant for f in profile.feedback):
        return None  # nothing to learn from: keep the ranking path free of the work
    return retrain(session, profile, settings)
