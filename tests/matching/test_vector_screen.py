"""The vector screen: with the embedding on, the batch screen keeps what the ranker sends by meaning."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.interest_vectors import interest_text, load_vector_screen, text_vectors
from service.matching.batch import BatchScreen, StoredInterest
from service.matching.documents import paper_text
from service.matching.interests import CompiledInterest, Interest, compile_interest
from service.matching.ranking import MatchContext, rank
from service.matching.vector_screen import VectorScreen
from service.models import Interest as InterestRow
from service.models import InterestVector, Paper, Profile

from .corpus import PAPERS
from .test_batch_screen import EDITED, transient_papers
from .test_percolator import random_interests

# Words of one concept share a dimension: "astronomy" is close to a galaxy paper with no shared word.
CONCEPTS = [
    "galaxy galaxies astronomy astrophysics cosmic stellar star stars dark matter rotation xenon",
    "attention transformer transformers softmax heads sparse linear documents",
    "cache kv memory quantization quantize bits compressing compression llama",
    "graph graphs molecules neural networks chemistry",
]


class ConceptEmbedder:
    """A deterministic stand-in for MiniLM in which synonyms are close; counts what it embeds."""

    model_id = "test-concepts"
    dimension = len(CONCEPTS) + 1

    def __init__(self) -> None:
        self.index = {word: n for n, line in enumerate(CONCEPTS) for word in line.split()}
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, self.index.get(word, len(CONCEPTS))] += 1.0 if word in self.index else 0.2
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class MemorySemantic:
    """BatchScreen's semantic half without a database: vectors made on the spot."""

    def __init__(self, embedder: ConceptEmbedder) -> None:
        self.embedder = embedder

    def load(self, interests: Sequence[tuple[int, CompiledInterest]]) -> VectorScreen:
        ids = [i for i, c in interests if interest_text(c)]
        texts = [interest_text(c) for i, c in interests if interest_text(c)]
        return VectorScreen(ids, self.embedder.embed(texts))

    def paper_vectors(self, papers: Sequence[Paper]) -> np.ndarray:
        return self.embedder.embed([f"{p.title}\n{p.abstract}" for p in papers])


@pytest.mark.parametrize("seed", range(4))
def test_screen_by_meaning_keeps_every_interest_the_semantic_ranker_sends(seed: int) -> None:
    rng = random.Random(seed)
    embedder = ConceptEmbedder()
    interests = [interest for _, interest in random_interests(seed, 40)]
    interests += [
        Interest("astro", "astronomy"),  # no paper has the word; the galaxy papers are close in meaning
        Interest("chem", "chemistry"),
        Interest("cooking", "recipes, baking"),  # nothing is close in words or meaning
    ]
    papers = transient_papers()
    stored = [StoredInterest(1, n, i.name, EDITED, i) for n, i in enumerate(interests)]
    screen = BatchScreen(stored, MemorySemantic(embedder))  # type: ignore[arg-type]
    words_only = BatchScreen(stored)
    ruled_out = needed_meaning = 0
    for _ in range(6):
        subset = rng.sample(PAPERS, rng.randint(2, len(PAPERS)))
        if not any(doc.id in ("p5", "p6", "p7") for doc in subset):
            subset.append(PAPERS[4])
        screen.screen(papers[doc.id] for doc in subset)
        words_only.screen(papers[doc.id] for doc in subset)
        context = MatchContext(subset, embedder=embedder)
        ids = np.array([papers[doc.id].id for doc in subset])
        for n, interest in enumerate(interests):
            sent = rank(compile_interest(interest), context, top_k=len(PAPERS))
            kept = screen.interest_may_match(n, ids)
            assert kept or not sent, (interest, [m.paper_id for m in sent])
            ruled_out += not kept
            needed_meaning += bool(sent) and not words_only.interest_may_match(n, ids)
    assert ruled_out > 0  # still a screen with the embedding on
    assert needed_meaning > 0  # and the words alone would have cut interests the ranker serves


def test_vector_screen_blocks_and_floor() -> None:
    vectors = np.eye(3, dtype=np.float32)
    screen = VectorScreen([10, 20, 30], vectors, floor=0.5)
    papers = np.array([[0.9, 0.1, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32)
    assert screen.wanted(papers) == {10, 20, 30}
    assert screen.wanted(papers[:1]) == {10}
    owners, rows = screen.hits(papers)
    assert sorted(zip(owners.tolist(), rows.tolist(), strict=True)) == [(10, 0), (20, 1), (30, 1)]
    assert screen.wanted(np.zeros((0, 3))) == set()
    with pytest.raises(ValueError, match="one vector only"):
        VectorScreen([1, 1], np.eye(2))


def test_interest_vectors_are_stored_once_and_redone_after_an_edit(db: Session) -> None:
    embedder = ConceptEmbedder()
    profile = Profile(
        name="ada",
        interests=[InterestRow(name="a", keywords="astronomy"), InterestRow(name="b", keywords="graph")],
    )
    db.add(profile)
    db.flush()

    def compiled() -> list[tuple[int, CompiledInterest]]:
        return [(row.id, compile_interest(Interest(row.name, row.keywords))) for row in profile.interests]

    screen = load_vector_screen(db, compiled(), embedder)
    assert embedder.texts == 2 and len(screen) == 2
    assert db.query(InterestVector).count() == 2
    load_vector_screen(db, compiled(), embedder)
    assert embedder.texts == 2  # read back, not embedded again
    profile.interests[0].keywords = "molecules"
    db.flush()
    again = load_vector_screen(db, compiled(), embedder)
    assert embedder.texts == 3  # only the edited interest
    galaxy = embedder.embed([paper_text(PAPERS[4])])
    assert again.wanted(galaxy) == set()  # neither "molecules" nor "graph" is near a galaxy paper
    assert screen.wanted(galaxy) == {profile.interests[0].id}


def test_a_pass_keeps_interest_vectors_it_cannot_store(
    db: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass embeds missing interest vectors and stores them in a short transaction of its own; when
    the database refuses that write (SQLite busy past its timeout), the pass still ranks with them and
    says so, and nothing is stored."""
    embedder = ConceptEmbedder()
    profile = Profile(name="ada", interests=[InterestRow(name="a", keywords="astronomy")])
    db.add(profile)
    db.flush()
    interests = [(row.id, compile_interest(Interest(row.name, row.keywords))) for row in profile.interests]

    def refused(self: Session, *args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO interest_vectors", {}, Exception("database is locked"))

    monkeypatch.setattr(Session, "merge", refused)
    with caplog.at_level("WARNING", logger="service.interest_vectors"):
        vectors = text_vectors(db, interests, embedder)
    assert list(vectors) == ["astronomy"] and embedder.texts == 1
    assert "1 not stored (database is locked)" in caplog.text
    monkeypatch.undo()
    assert db.query(InterestVector).count() == 0
