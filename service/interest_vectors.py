"""Interest vectors in the database (interest_vectors), for the vector screens and the ranker.

An interest's vector is the sentence embedding of the text the ranker embeds for it (its keywords
and query without syntax, ranking.score_pool). It is stored with a hash of that text: an edited
interest is embedded again the next time it is needed, the others never.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.matching.interests import CompiledInterest, plain_text
from service.matching.semantic import Embedder, vector_from_bytes, vector_to_bytes
from service.matching.vector_screen import VectorScreen
from service.models import InterestVector

__all__ = ["interest_text", "load_vector_screen", "text_vectors"]

log = logging.getLogger(__name__)

_BATCH = 256  # interest texts embedded per call, and rows read per query


def interest_text(compiled: CompiledInterest) -> str:
    """What the ranker embeds for an interest's words (empty when it has none)."""
    return ", ".join(plain_text(q) for q in (compiled.keywords, compiled.query) if q is not None)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _texts(interests: Sequence[tuple[int, CompiledInterest]]) -> dict[int, str]:
    texts = {interest_id: interest_text(compiled) for interest_id, compiled in interests}
    return {interest_id: text for interest_id, text in texts.items() if text}


def _stored(session: Session, texts: dict[int, str], model_id: str) -> dict[int, np.ndarray]:
    """The stored vectors of these interests that are of their current text."""
    ids = list(texts)
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), _BATCH * 4):
        chunk = ids[start : start + _BATCH * 4]
        for interest_id, text_hash, vector in session.execute(
            select(InterestVector.interest_id, InterestVector.text_hash, InterestVector.vector).where(
                InterestVector.interest_id.in_(chunk), InterestVector.model == model_id
            )
        ):
            if text_hash == _hash(texts[interest_id]):
                found[interest_id] = vector_from_bytes(vector)
    return found


def _embed_missing(
    texts: dict[int, str], found: dict[int, np.ndarray], embedder: Embedder
) -> dict[int, np.ndarray]:
    missing = [i for i in texts if i not in found]
    fresh: dict[int, np.ndarray] = {}
    for start in range(0, len(missing), _BATCH):
        chunk = missing[start : start + _BATCH]
        fresh.update(zip(chunk, embedder.embed([texts[i] for i in chunk]), strict=True))
    return fresh


def _rows(texts: dict[int, str], vectors: dict[int, np.ndarray], model_id: str) -> list[InterestVector]:
    return [
        InterestVector(
            interest_id=i, model=model_id, text_hash=_hash(texts[i]), vector=vector_to_bytes(vector)
        )
        for i, vector in vectors.items()
    ]


def load_vector_screen(
    session: Session, interests: Sequence[tuple[int, CompiledInterest]], embedder: Embedder
) -> VectorScreen:
    """A screen over these (interest id, compiled interest) pairs; missing or outdated vectors are made."""
    texts = _texts(interests)
    vectors = _stored(session, texts, embedder.model_id)
    fresh = _embed_missing(texts, vectors, embedder)
    for row in _rows(texts, fresh, embedder.model_id):
        session.merge(row)
    session.flush()
    vectors.update(fresh)
    ids = list(texts)
    matrix = np.stack([vectors[i] for i in ids]) if ids else np.zeros((0, embedder.dimension))
    return VectorScreen(ids, matrix)


def text_vectors(
    session: Session, interests: Sequence[tuple[int, CompiledInterest]], embedder: Embedder
) -> dict[str, np.ndarray]:
    """Interest text -> vector for every interest with words: stored vectors are read in `session`,
    missing or outdated ones embedded in one batch and stored in a short transaction of their own
    (a batch is matched in one long read; on SQLite a write at its end would lose to any writer in
    between). Two workers storing the same interest at once: the first wins, the other keeps its
    vector in memory."""
    texts = _texts(interests)
    vectors = _stored(session, texts, embedder.model_id)
    fresh = _embed_missing(texts, vectors, embedder)
    if fresh:
        _store(session.get_bind(), _rows(texts, fresh, embedder.model_id))
    vectors.update(fresh)
    return {texts[i]: vector for i, vector in vectors.items()}


def _store(bind: Engine | Connection, rows: list[InterestVector]) -> None:
    """Storing saves the next pass an embedding; failing to store loses nothing of this one."""
    try:
        with Session(bind) as session, session.begin():
            for row in rows:
                session.merge(row)
    except IntegrityError:
        log.info("interest vectors: %d stored by another worker meanwhile; kept in memory", len(rows))
    except OperationalError as exc:  # e.g. SQLite busy past its timeout: the next pass stores them
        log.warning("interest vectors: %d not stored (%s); kept in memory", len(rows), exc.orig)
