"""Hybrid ranking of a pool of papers for one interest, with the reason for each match.

Signals, each standardised over the pool so they can be added:

* keywords/query: BM25F on the lexical path; with the [semantic] extra the cosine between
  the keywords' sentence embedding and each paper's (BM25F then only counts as evidence);
* seeds and feedback: a Rocchio vector (mean of seeds and liked papers, minus a little of
  the disliked ones) compared with each paper, as centred embeddings and as TF-IDF;
* the reader's learned scorer (reader_model.py), when the interest carries one, weighted
  by how many labels taught it; and a feature model fitted on the interest's labels
  (reader_features.py), off while its blend constant is 0;
* pseudo-relevance feedback: the first ranking's best papers spread their relevance over
  the pool's neighbour graph (see diffusion.py).

Filters (the query, excluded terms) are hard: a paper that fails them is never returned.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .dedup import suppress_duplicates
from .diffusion import MIN_POOL, NeighbourGraph, best_rows, standardize
from .documents import PaperDoc, analyze_paper
from .explain import Explanation, KeywordEvidence, Shown, brief, explain
from .interests import CompiledInterest, Interest, compile_interest, plain_text
from .lexical import LexicalIndex
from .reader_features import interest_features
from .reader_model import blend_weight, feature_blend_weight, train_feature_model
from .semantic import Embedder, EmbeddingCache, embed_papers, embedding_key

__all__ = ["CandidateRows", "Match", "MatchContext", "Ranking", "rank", "score_pool"]

# BM25F on the keywords no longer adds to the keywords' vector: keyword words shared with a whole
# field ("theory", "physics") pulled in the wrong papers. Chosen on the dev profiles at even
# positions among 0, 0.05, 0.1 and the former 0.25 (keywords-only nDCG@10 0.524, 0.520, 0.521, 0.512),
# checked on the odd ones (0.557 at 0 and at 0.25) and on fresh-seed subsets (README). The words
# still decide what may be sent (evidence), and rank on the lexical path.
KEYWORD_LEXICAL_WEIGHT = 0.0
# Pseudo-relevance feedback on the keywords' vector: its nearest papers join it, at equal weight. Chosen
# on the dev profiles at even positions (depth 3, 5, 10; weight 0.5, 1, 2), checked on the odd ones.
KEYWORD_FEEDBACK_DEPTH = 5
# With seeds, the keywords refine rather than lead.
KEYWORDS_WITH_SEEDS_WEIGHT = 0.5
# Closeness that counts as a reason on its own: MiniLM cosine (unrelated texts sit near 0.0-0.1,
# papers of one field at 0.3 and above), and TF-IDF cosine to the seeds (more than a stray word).
SEMANTIC_EVIDENCE = 0.3
SEED_LEXICAL_EVIDENCE = 0.05
# Rocchio's gamma: how far disliked papers push the profile away (SMART used 0.15-0.25).
DISLIKED_WEIGHT = 0.25
# Hubness: some papers sit close to everything and would top every reader's list. CSLS (Conneau et
# al. 2018, "Word translation without parallel data") ranks by 2 cos(x, q) - r(x) - r(q), r being the
# mean cosine to the 10 nearest neighbours; for one reader's vector q that orders papers as
# cos(x, q) - r(x) / 2. The textbook form, not tuned; applied to the vectors made of papers (the seeds'
# Rocchio vector, the reader's learned weights), not to a query of a few words, where it lost (README
# "Hubness").
HUBNESS_PENALTY = 0.5
# Cosines between pool papers a shared context keeps for keyword feedback (a row per paper): every
# paper of a 5,000-paper pool at float32.
PAPER_SIMILARITY_BYTES = 128 * 2**20
# A ranking's head sorted before near-duplicates are dropped, in multiples of the papers asked for.
HEAD_SORTED = 3


@dataclass(slots=True)
class Match:
    """One paper chosen for an interest: its score (pool standard deviations) and why."""

    paper_id: str
    score: float
    rank: int
    explanation: Explanation


@dataclass(slots=True)
class Ranking:
    """Scores for every pool paper; ``allowed`` marks those that pass the filters."""

    scores: np.ndarray
    allowed: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    # Papers with some direct reason to be sent (a shared word, or real closeness in meaning);
    # the digest sends nothing else, however empty the batch. The evaluation ranks everything.
    evidence: np.ndarray | None = None


class MatchContext:
    """Everything about a pool of papers that does not depend on the interest.

    ``pool`` is what may be recommended; ``references`` are papers that are only
    read (seeds and feedback outside the pool). Build one context per batch and rank
    every interest against it.
    """

    def __init__(
        self,
        pool: Sequence[PaperDoc],
        *,
        references: Sequence[PaperDoc] = (),
        embedder: Embedder | None = None,
        cache: EmbeddingCache | None = None,
        cache_key: Callable[[PaperDoc], str] = embedding_key,
    ) -> None:
        seen = {doc.id for doc in pool}
        extra = [doc for doc in references if doc.id not in seen]
        self.docs: list[PaperDoc] = [*pool, *extra]
        self.pool_size = len(pool)
        self.row = {doc.id: i for i, doc in enumerate(self.docs)}
        self.index = LexicalIndex([analyze_paper(doc) for doc in self.docs])
        self.tfidf = self.index.tfidf()
        self.embedder = embedder
        self.embeddings: np.ndarray | None = None
        self.centred: np.ndarray | None = None
        if embedder is not None:
            vectors = embed_papers(self.docs, embedder, cache, cache_key)
            self.embeddings = vectors
            # Removing the pool's mean direction sharpens cosine between papers of one field.
            centred = vectors - vectors[: max(self.pool_size, 1)].mean(axis=0)
            self.centred = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
        self._graph: NeighbourGraph | None = None
        self._text_vectors: dict[str, np.ndarray] = {}
        self._text_similarities: dict[str, np.ndarray] = {}
        self._paper_similarities: dict[int, np.ndarray] | None = None
        # explain.keyword_evidence's results by (keyword, row): they depend on nothing else.
        self.keyword_memo: dict[tuple[str, int], KeywordEvidence] = {}
        # explain.completed's shown parts by (row, words found, terms shared with the seeds).
        self.shown_memo: dict[tuple[int, frozenset[str], frozenset[str]], Shown] = {}

    @property
    def semantic(self) -> bool:
        return self.embeddings is not None

    @property
    def graph(self) -> NeighbourGraph:
        """Neighbours among pool *and* reference papers: seeds pass relevance to their neighbours."""
        if self._graph is None:
            vectors = self.centred if self.centred is not None else self.tfidf
            self._graph = NeighbourGraph(vectors)
        return self._graph

    def remember_text_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Vectors of interest texts embedded beforehand (stored per interest), so ranking many
        interests does not run the model once per interest."""
        for text, vector in vectors.items():
            self._text_vectors.setdefault(text, vector)

    def embed_text(self, text: str) -> np.ndarray:
        assert self.embedder is not None
        if text not in self._text_vectors:
            self._text_vectors[text] = self.embedder.embed([text])[0]
        return self._text_vectors[text]

    def text_similarity(self, text: str) -> np.ndarray:
        """Cosine between the text's vector and each pool paper's."""
        found = self._text_similarities.get(text)
        if found is not None:
            return found
        assert self.embeddings is not None
        return self.embeddings[: self.pool_size] @ self.embed_text(text)

    def remember_text_similarities(self, texts: Sequence[str]) -> np.ndarray:
        """text_similarity of each text (a row each), as one matrix product; kept for ranking the
        texts' interests, in place of what an earlier call kept. Rows may differ from a lone
        text_similarity in the last float32 bits (a product of matrices adds in its own order)."""
        assert self.embeddings is not None and self.embedder is not None
        pool = self.embeddings[: self.pool_size]
        if not texts:
            self._text_similarities = {}
            return np.zeros((0, self.pool_size), dtype=pool.dtype)
        rows = np.stack([self.embed_text(t) for t in texts]) @ pool.T
        self._text_similarities = dict(zip(texts, rows, strict=True))
        return rows

    def remember_paper_similarities(self) -> None:
        """Keep the cosines between pool papers that keyword feedback (`_expanded`) reads: worth it
        when many interests rank over one pool, whose top papers repeat."""
        if self._paper_similarities is None:
            self._paper_similarities = {}

    def paper_similarities(self, rows: np.ndarray) -> np.ndarray | None:
        """Cosines of pool papers `rows` with every pool paper (a row each), or None when not kept."""
        kept = self._paper_similarities
        if kept is None:
            return None
        assert self.embeddings is not None
        pool = self.embeddings[: self.pool_size]
        wanted = [int(r) for r in rows]
        missing = [r for r in wanted if r not in kept]
        fresh = dict(zip(missing, pool[missing] @ pool.T, strict=True)) if missing else {}
        room = PAPER_SIMILARITY_BYTES // max(pool.itemsize * self.pool_size, 1)
        if len(missing) <= room:
            while kept and len(kept) + len(missing) > room:
                del kept[next(iter(kept))]
            kept.update(fresh)
        return np.stack([kept[r] if r in kept else fresh[r] for r in wanted])

    def rows(self, ids: Collection[str]) -> list[int] | np.ndarray:
        if isinstance(ids, CandidateRows) and ids.context is self:
            return ids.rows
        return [self.row[i] for i in ids if i in self.row]


class CandidateRows(Collection[str]):
    """Candidate paper ids given as rows of one context (a pool's papers minus those a subscription
    already got): ranking many subscriptions over one pool never turns thousands of ids into rows."""

    def __init__(self, context: MatchContext, rows: np.ndarray) -> None:
        self.context = context
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        return (self.context.docs[int(r)].id for r in self.rows)

    def __contains__(self, paper_id: object) -> bool:
        row = self.context.row.get(paper_id) if isinstance(paper_id, str) else None
        return row is not None and bool(np.any(self.rows == row))


def _rocchio(matrix: np.ndarray | sp.spmatrix, positive: list[int], negative: list[int]) -> np.ndarray:
    vector = np.zeros(matrix.shape[1])
    if positive:
        vector += np.asarray(matrix[positive].mean(axis=0)).ravel()
    if negative:
        vector -= DISLIKED_WEIGHT * np.asarray(matrix[negative].mean(axis=0)).ravel()
    return vector


def _expanded(
    similarity: np.ndarray,
    query: np.ndarray,
    vectors: np.ndarray,
    allowed: np.ndarray,
    kept: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> np.ndarray:
    """Cosine to the keywords' vector moved towards its nearest papers (pseudo-relevance feedback).

    A few words are a thin query: adding the mean vector of the KEYWORD_FEEDBACK_DEPTH most similar
    papers (Rocchio on sentence vectors) says what the reader's field writes about. The product with
    the moved vector is linear: where `kept` gives the top papers' cosines with every paper
    (MatchContext.paper_similarities), it is the keywords' own cosines plus the mean of those rows,
    with no product per interest.
    """
    candidates = np.flatnonzero(allowed)
    if len(candidates) < 2 * KEYWORD_FEEDBACK_DEPTH:
        return similarity
    top = best_rows(similarity, candidates, KEYWORD_FEEDBACK_DEPTH)
    moved = query + vectors[top].mean(axis=0)
    norm = max(float(np.linalg.norm(moved)), 1e-12)
    rows = kept(top) if kept is not None else None
    if rows is not None:
        return (similarity + rows.mean(axis=0)) / norm
    return vectors @ (moved / norm)


def _less_hubs(products: np.ndarray, direction: np.ndarray, context: MatchContext) -> np.ndarray:
    """Pool papers' products with a reader's direction as CSLS orders them (see HUBNESS_PENALTY).

    Only where the neighbour graph, which measures each paper's density, is built (MIN_POOL).
    """
    n = context.pool_size
    if n < MIN_POOL:
        return products
    cosines = products / max(float(np.linalg.norm(direction)), 1e-12)
    return cosines - HUBNESS_PENALTY * context.graph.density[:n]


def _feature_model_scores(
    compiled: CompiledInterest,
    context: MatchContext,
    positive: list[int],
    negative: list[int],
    allowed: np.ndarray,
) -> np.ndarray | None:
    """The interest's feature model (reader_model.train_feature_model), fitted on its labels, on the pool."""
    n = context.pool_size
    _, features = interest_features(compiled, context, positive, negative, allowed)
    # Labelled papers are never allowed: the rest of the pool is the unlabelled background.
    weights = train_feature_model(features, positive, negative, np.flatnonzero(allowed))
    if weights is None:
        return None
    return features[:n] @ weights[:-1]


def score_pool(
    compiled: CompiledInterest, context: MatchContext, candidates: Collection[str] | None = None
) -> Ranking:
    """Score every pool paper for the interest (the evaluation ranks from this directly)."""
    n = context.pool_size
    interest = compiled.interest
    allowed = np.ones(n, dtype=bool)
    index = context.index
    if compiled.query is not None:
        allowed &= index.mask(compiled.query.root)[:n]
    for node in compiled.exclude:
        allowed &= ~index.mask(node)[:n]
    own = context.rows([*interest.seeds, *interest.liked, *interest.disliked])
    allowed[[r for r in own if r < n]] = False
    if candidates is not None:
        wanted = np.zeros(n, dtype=bool)
        rows = np.asarray(context.rows(candidates), dtype=np.int64)
        wanted[rows[rows < n]] = True
        allowed &= wanted

    signals: dict[str, np.ndarray] = {}
    parts: list[tuple[np.ndarray, float]] = []
    evidence = np.zeros(n, dtype=bool)
    worded = [q for q in (compiled.keywords, compiled.query) if q is not None]
    if worded:
        lexical = sum((index.score(q.root)[:n] for q in worded), np.zeros(n))
        signals["keywords_lexical"] = lexical
        evidence |= lexical > 0
        with_words = not context.semantic or KEYWORD_LEXICAL_WEIGHT != 0.0
        combined = standardize(lexical, allowed) if with_words else np.zeros(n)
        if context.semantic:
            text = ", ".join(plain_text(q) for q in worded)
            assert context.embeddings is not None
            semantic = context.text_similarity(text) if text else np.zeros(n)
            signals["keywords_semantic"] = semantic
            evidence |= semantic >= SEMANTIC_EVIDENCE  # on the keywords' own vector (the vector screen's too)
            if text:
                semantic = _expanded(
                    semantic,
                    context.embed_text(text),
                    context.embeddings[:n],
                    allowed,
                    context.paper_similarities,
                )
            combined = standardize(semantic, allowed) + KEYWORD_LEXICAL_WEIGHT * combined
        parts.append((combined, 1.0))
    positive = context.rows(compiled.positive_seeds)
    negative = context.rows(interest.disliked)
    if positive or negative:
        lexical = context.tfidf[:n] @ _rocchio(context.tfidf, positive, negative)
        signals["seeds_lexical"] = lexical
        combined = standardize(lexical, allowed)
        if positive:
            evidence |= lexical >= SEED_LEXICAL_EVIDENCE
        if context.centred is not None and context.embeddings is not None:
            if positive:
                closest = (context.embeddings[:n] @ context.embeddings[positive].T).max(axis=1)
                evidence |= closest >= SEMANTIC_EVIDENCE
            vector = _rocchio(context.centred, positive, negative)
            semantic = _less_hubs(context.centred[:n] @ vector, vector, context)
            signals["seeds_semantic"] = semantic
            combined = combined + standardize(semantic, allowed)
        weight = 1.0 if positive else 0.5  # dislikes alone only nudge
        parts.append((combined, weight))
        if worded and positive:
            parts[0] = (parts[0][0], KEYWORDS_WITH_SEEDS_WEIGHT)

    hybrid = sum(w for _, w in parts)
    model = interest.model
    model_id = context.embedder.model_id if context.embedder is not None else None
    if model is not None and context.embeddings is not None and model.model_id == model_id and parts:
        learned = _less_hubs(model.score(context.embeddings[:n]) - model.bias, model.weights, context)
        signals["learned"] = learned
        # Relative to the signals already there: at full weight it counts as much as all of them.
        parts.append((learned, blend_weight(model.labels) * hybrid))
    if positive and parts and feature_blend_weight(len(positive) + len(negative)) > 0:
        learned_features = _feature_model_scores(compiled, context, positive, negative, allowed)
        if learned_features is not None:
            signals["learned_features"] = learned_features
            parts.append((learned_features, feature_blend_weight(len(positive) + len(negative)) * hybrid))

    first = sum((w * standardize(p, allowed) for p, w in parts), np.zeros(n))
    scores = standardize(first, allowed)
    if n >= MIN_POOL:
        spread = context.graph.feedback(first, allowed, positive)[:n]
        signals["neighbours"] = spread
        scores = standardize(scores + standardize(spread, allowed), allowed)
    return Ranking(scores, allowed, signals, evidence)


def rank(
    interest: Interest | CompiledInterest,
    context: MatchContext,
    *,
    candidates: Collection[str] | None = None,
    top_k: int | None = None,
    threshold: float | None = None,
    dedupe: bool = True,
    explained: bool = True,
) -> list[Match]:
    """The interest's best papers of the pool, best first, each with its explanation.

    ``candidates`` limits the result to those paper ids (e.g. the new ones) while the
    whole pool still informs the statistics. ``top_k``/``threshold`` override the interest's.
    ``explained=False`` gives each match only its keyword evidence and signals (what the digest's
    cut-off reads), for measuring many profiles quickly.
    """
    compiled = interest if isinstance(interest, CompiledInterest) else compile_interest(interest)
    ranking = score_pool(compiled, context, candidates)
    limit = top_k if top_k is not None else compiled.interest.top_k
    floor = threshold if threshold is not None else compiled.interest.threshold
    order = np.flatnonzero(ranking.allowed & ranking.evidence)
    if floor is not None:
        order = order[ranking.scores[order] >= floor]
    # Only the head is sorted (best_rows: the stable sort's head, ties included); the whole ranking
    # only when near-duplicates leave the head short of `limit`.
    head = best_rows(ranking.scores, order, HEAD_SORTED * limit)
    if dedupe:
        kept = suppress_duplicates(head, context, limit)
        if len(kept) < limit and len(head) < len(order):
            kept = suppress_duplicates(
                order[np.argsort(-ranking.scores[order], kind="stable")], context, limit
            )
        order = kept
    else:
        order = head
    matches = []
    for position, row in enumerate(order[:limit]):
        why = (
            explain(compiled, context, int(row), ranking)
            if explained
            else brief(compiled, context, int(row), ranking)
        )
        matches.append(Match(context.docs[row].id, float(ranking.scores[row]), position + 1, why))
    return matches
