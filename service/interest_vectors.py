"""Interest vectors in the database (interest_vectors), for the batch path's vector screen.

An interest's vector is the sentence embedding of the text the ranker embeds for it (its keywords
and query without syntax, ranking.score_pool). It is stored with a hash of that text: an edited
interest is embedded again the next time the screen is built, the others never.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.matching.interests import CompiledInterest, plain_text
from service.matching.semantic import Embedder, vector_from_bytes, vector_to_bytes
from service.matching.vector_screen import VectorScreen
from service.models import InterestVector

__all__ = ["interest_text", "load_vector_screen", "stored_text_vectors"]

_BATCH = 256  # interest texts embedded per call, and rows read per query


def interest_text(compiled: CompiledInterest) -> str:
    """What the ranker embeds for an interest's words (empty when it has none)."""
    return ", ".join(plain_text(q) for q in (compiled.keywords, compiled.query) if q is not None)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def load_vector_screen(
    session: Session, interests: Sequence[tuple[int, CompiledInterest]], embedder: Embedder
) -> VectorScreen:
    """A screen over these (interest id, compiled interest) pairs; missing or outdated vectors are made."""
    texts = {interest_id: interest_text(compiled) for interest_id, compiled in interests}
    texts = {interest_id: text for interest_id, text in texts.items() if text}
    ids = list(texts)
    vectors: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), _BATCH * 4):
        chunk = ids[start : start + _BATCH * 4]
        for row in session.scalars(
            select(InterestVector).where(
                InterestVector.interest_id.in_(chunk), InterestVector.model == embedder.model_id
            )
        ):
            if row.text_hash == _hash(texts[row.interest_id]):
                vectors[row.interest_id] = vector_from_bytes(row.vector)
    missing = [i for i in ids if i not in vectors]
    for start in range(0, len(missing), _BATCH):
        chunk = missing[start : start + _BATCH]
        fresh = embedder.embed([texts[i] for i in chunk])
        for interest_id, vector in zip(chunk, fresh, strict=True):
            vectors[interest_id] = vector
            session.merge(
                InterestVector(
                    interest_id=interest_id,
                    model=embedder.model_id,
                    text_hash=_hash(texts[interest_id]),
                    vector=vector_to_bytes(vector),
                )
            )
        session.flush()
    matrix = np.stack([vectors[i] for i in ids]) if ids else np.zeros((0, embedder.dimension))
    return VectorScreen(ids, matrix)


def stored_text_vectors(
    session: Session, interests: Sequence[tuple[int, CompiledInterest]], model_id: str
) -> dict[str, np.ndarray]:
    """Interest text -> its stored vector, for the interests whose stored vector is of their current
    text (reads only: a missing one is embedded by the ranker, as before)."""
    texts = {interest_id: interest_text(compiled) for interest_id, compiled in interests}
    texts = {interest_id: text for interest_id, text in texts.items() if text}
    ids = list(texts)
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), _BATCH * 4):
        chunk = ids[start : start + _BATCH * 4]
        for row in session.scalars(
            select(InterestVector).where(
                InterestVector.interest_id.in_(chunk), InterestVector.model == model_id
            )
        ):
            text = texts[row.interest_id]
            if row.text_hash == _hash(text):
                found[text] = vector_from_bytes(row.vector)
    return found
