"""Ranking many profiles over one pool (a dispatch pass) gives each the results it gets alone,
profiles with seed papers or feedback among the pool's papers included.

The pool path shares one context between profiles: candidates given as context rows, propagated
columns kept by the neighbour graph, interest vectors embedded beforehand, word scores kept by the
index. None of that may change a result: same papers, order, scores (to 1e-9) and reasons.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

import numpy as np
import pytest

from service.interest_vectors import interest_text
from service.matching import dedup, diffusion, explain, ranking
from service.matching.diffusion import NeighbourGraph, best_rows
from service.matching.documents import PaperDoc
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import CandidateRows, Match, MatchContext, rank
from tests.conftest import shared_path


class WordEmbedder:
    """A deterministic stand-in for MiniLM (hashed bag of words): one text embeds alike alone or in a
    batch, as the pool path's stored interest vectors need to be compared exactly."""

    model_id = "test-words"
    dimension = 64

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def dev_set(papers: int) -> tuple[list[PaperDoc], list[dict[str, str]]]:
    folder = shared_path("eval", "dev")
    rows = [json.loads(line) for line in (folder / "papers.jsonl").read_text().splitlines()[:papers]]
    docs = [PaperDoc(r["id"], r["title"], r["abstract"], tuple(r.get("authors") or ())) for r in rows]
    profiles = [json.loads(line) for line in (folder / "profiles.jsonl").read_text().splitlines()]
    return docs, profiles


def interests(profiles: list[dict[str, str]]) -> list[Interest]:
    """Keyword profiles, query profiles (a filter and a word to rank by), and keywords with an exclusion."""
    out = []
    for p in profiles:
        keywords = [k.strip() for k in p["keywords"].split(",") if k.strip()]
        out.append(Interest(p["id"], keywords=p["keywords"], threshold=0.0, top_k=10))
        out.append(
            Interest(f"{p['id']}-q", query=f'"{keywords[0]}" OR {keywords[-1]}', threshold=0.0, top_k=10)
        )
        out.append(Interest(f"{p['id']}-x", keywords=p["keywords"], exclude=("survey",), top_k=5))
    return out


def seeded(profiles: list[dict[str, str]], docs: list[PaperDoc]) -> list[Interest]:
    """Profiles whose seed papers and feedback are pool papers (the pool path ranks them in the shared
    context): seeds alone, keywords with seeds, keywords with liked and disliked papers."""
    ids = {doc.id for doc in docs}
    rng = random.Random(9)
    out = []
    for p in profiles:
        seeds = tuple(s for s in p["seeds"] if s in ids) or tuple(rng.sample(sorted(ids), 3))
        out.append(Interest(f"{p['id']}-s", seeds=seeds, threshold=0.0, top_k=10))
        out.append(Interest(f"{p['id']}-ks", keywords=p["keywords"], seeds=seeds[:2], top_k=10))
        liked, disliked = rng.sample(sorted(ids), 2), rng.sample(sorted(ids), 1)
        out.append(Interest(f"{p['id']}-f", keywords=p["keywords"], liked=liked, disliked=disliked))
    return out


def described(matches: list[Match]) -> list[tuple[object, ...]]:
    return [
        (
            m.paper_id,
            m.rank,
            m.explanation.summary("topic"),
            m.explanation.terms,
            m.explanation.phrases,
            m.explanation.shared_terms,
            m.explanation.title_highlights,
            m.explanation.snippet,
            m.explanation.keywords,
            sorted(m.explanation.signals),
        )
        for m in matches
    ]


@pytest.mark.parametrize("embedded", [False, True], ids=["lexical", "embedder"])
def test_a_shared_pool_ranks_every_profile_as_it_ranks_alone(embedded: bool) -> None:
    docs, profiles = dev_set(600)
    embedder = WordEmbedder() if embedded else None
    alone = MatchContext(docs, embedder=embedder)
    shared = MatchContext(docs, embedder=embedder)
    shared.graph.remember_spread()
    chosen = interests(profiles[::2]) + seeded(profiles[1::4], docs)
    if embedded:
        texts = [interest_text(compile_interest(i)) for i in chosen]
        texts = [t for t in texts if t]
        shared.remember_text_vectors(dict(zip(texts, WordEmbedder().embed(texts), strict=True)))
    rng = random.Random(5)
    compared = 0
    for interest in chosen:
        # Each subscription already got a few of the pool's papers: candidates differ per profile.
        held = set(rng.sample(range(len(docs)), rng.randint(0, 40)))
        rows = np.array([r for r in range(len(docs)) if r not in held])
        expected = rank(interest, alone, candidates=[docs[r].id for r in rows])
        got = rank(interest, shared, candidates=CandidateRows(shared, rows))
        assert described(got) == described(expected), interest.name
        assert np.allclose([m.score for m in got], [m.score for m in expected], rtol=0, atol=1e-9)
        for g, e in zip(got, expected, strict=True):
            assert g.explanation.signals.keys() == e.explanation.signals.keys()
            assert np.allclose(
                list(g.explanation.signals.values()), list(e.explanation.signals.values()), atol=1e-4
            )
        compared += len(got)
    assert compared > 2 * len(chosen)  # most profiles matched papers: the comparison means something
    assert shared.graph._spread  # the shared path did reuse propagated columns


def test_kept_spreads_sum_to_the_propagation_of_the_rows_together(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((150, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    plain, kept = NeighbourGraph(vectors), NeighbourGraph(vectors)
    kept.remember_spread()
    # Room for only a dozen columns: old ones are dropped while a profile's own are in use.
    monkeypatch.setattr(diffusion, "SPREAD_BYTES", 12 * 8 * 150)
    for _ in range(30):
        first = rng.standard_normal(150)
        allowed = rng.random(150) > 0.3
        known = list(rng.choice(150, size=int(rng.integers(0, 4)), replace=False))
        expected = plain.feedback(first, allowed, known)
        assert np.array_equal(kept.feedback(first, allowed, known), expected)  # bit for bit: ties stay ties
    assert kept._spread is not None and 0 < len(kept._spread) <= 12


def test_best_rows_are_the_stable_sort_head() -> None:
    rng = np.random.default_rng(1)
    for size in (0, 3, 50, 400):
        values = rng.integers(0, 6, size).astype(float)  # many ties
        rows = np.flatnonzero(rng.random(size) > 0.2)
        for k in (1, 3, 10, 60):
            expected = rows[np.argsort(-values[rows], kind="stable")[:k]]
            assert best_rows(values, rows, k).tolist() == expected.tolist()


def test_near_duplicates_found_at_once_are_the_pairs_compared_one_by_one() -> None:
    docs, profiles = dev_set(400)
    rng = random.Random(7)
    # Re-posts: the same abstract with a sentence added or a few words cut, and unrelated near misses.
    copies = []
    for n, doc in enumerate(rng.sample(docs, 40)):
        words = doc.abstract.split()
        abstract = doc.abstract + " Code is released." if n % 2 else " ".join(words[: int(len(words) * 0.8)])
        copies.append(PaperDoc(f"{doc.id}-v{n}", doc.title, abstract, doc.authors))
    pool = docs + copies
    shared, alone = MatchContext(pool), MatchContext(pool)
    dedup.remember_duplicates(shared)
    near = dedup._COMPARED[shared].near
    assert near is not None
    found = {(a, b) for a, others in near.items() for b in others if a < b}
    sets = [dedup.shingles(doc) for doc in pool]
    candidates = {(a, b) for a in range(len(pool)) for b in range(a + 1, len(pool)) if sets[a] & sets[b]}
    expected = {(a, b) for a, b in candidates if dedup.is_near_duplicate(sets[a], sets[b])}
    assert found == expected and len(found) >= 20
    for interest in interests(profiles[::3]):
        assert described(rank(interest, shared)) == described(rank(interest, alone)), interest.name


def test_papers_close_in_meaning_found_at_once_are_the_pairs_compared_one_by_one() -> None:
    """With the embedding, remember_duplicates also finds every pair the ranking's check by cosine
    would drop (one product per block instead of one per kept paper): the same pairs, the same
    rankings."""
    docs, profiles = dev_set(400)
    copies = [
        PaperDoc(f"{doc.id}-v", doc.title, doc.abstract + " Code is released.", doc.authors)
        for doc in random.Random(3).sample(docs, 30)
    ]
    pool = docs + copies
    shared, alone = MatchContext(pool, embedder=WordEmbedder()), MatchContext(pool, embedder=WordEmbedder())
    dedup.remember_duplicates(shared)
    close = dedup._COMPARED[shared].close
    assert close is not None and shared.embeddings is not None
    found = {(a, b) for a, others in close.items() for b in others if a < b}
    cosines = shared.embeddings @ shared.embeddings.T
    expected = {
        (a, b)
        for a in range(len(pool))
        for b in range(a + 1, len(pool))
        if cosines[a, b] > dedup.EMBEDDING_DUPLICATE
    }
    assert found == expected and len(found) >= 30
    for interest in interests(profiles[::3]):
        assert described(rank(interest, shared)) == described(rank(interest, alone)), interest.name


def test_keyword_evidence_kept_for_other_profiles_is_what_a_fresh_context_finds() -> None:
    """The context keeps each (keyword, paper) evidence for the profiles after: a warm context (every
    profile ranked over it first) explains each pair as a context that never saw it does."""
    docs, profiles = dev_set(300)
    warm = MatchContext(docs)
    chosen = interests(profiles[:40])
    for interest in chosen:
        rank(interest, warm, top_k=10)
    assert warm.keyword_memo
    cold = MatchContext(docs)
    rows = random.Random(4).sample(range(len(docs)), 60)
    found = 0
    for interest in chosen:
        for row in rows:
            expected = explain.keyword_evidence(interest.keywords, cold, row)
            assert explain.keyword_evidence(interest.keywords, warm, row) == expected
            found += sum(bool(k.words) for k in expected)
    assert found > 50  # many pairs hold words: the comparison means something


def test_kept_similarities_rank_as_the_products_per_interest_do() -> None:
    """A pass's pool keeps the cosines of the batch's interest texts (one matrix product) and between
    its papers (keyword feedback): rankings are those of one product per interest, up to float32
    rounding (scores to 1e-4; only papers that close may swap places)."""
    docs, profiles = dev_set(600)
    alone = MatchContext(docs, embedder=WordEmbedder())
    kept = MatchContext(docs, embedder=WordEmbedder())
    kept.remember_paper_similarities()
    chosen = interests(profiles[::3])
    texts = sorted({t for t in (interest_text(compile_interest(i)) for i in chosen) if t})
    kept.remember_text_similarities(texts)
    compared = 0
    for interest in chosen:
        expected = rank(interest, alone, top_k=10)
        got = rank(interest, kept, top_k=10)
        assert np.allclose([m.score for m in got], [m.score for m in expected], rtol=0, atol=1e-4)
        for g, e in zip(got, expected, strict=True):
            assert g.paper_id == e.paper_id or abs(g.score - e.score) < 1e-4, interest.name
        compared += len(got)
    assert compared > 2 * len(chosen)
    assert kept._paper_similarities and kept._text_similarities  # the kept products were used


def test_sorting_only_the_head_ranks_as_sorting_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """rank sorts only the head of a ranking (HEAD_SORTED x the papers asked for) and sorts it all
    when near-duplicates leave the head short: the same papers in the same order either way."""
    docs, profiles = dev_set(400)
    copies = [
        PaperDoc(f"{doc.id}-v{n}", doc.title, doc.abstract + f" Version {n}.", doc.authors)
        for doc in docs[:60]
        for n in range(3)
    ]
    context = MatchContext(docs + copies)
    chosen = interests(profiles[::4])
    monkeypatch.setattr(ranking, "HEAD_SORTED", 10**6)
    expected = [described(rank(i, context, top_k=10)) for i in chosen]
    monkeypatch.setattr(ranking, "HEAD_SORTED", 1)
    got = [described(rank(i, context, top_k=10)) for i in chosen]
    assert got == expected
    assert sum(len(g) for g in got) > 3 * len(chosen)
