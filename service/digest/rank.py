"""The glue between stored profiles and the matching engine: rank papers for a profile."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from service.config import Settings, get_settings
from service.digest.cutoff import cut_off
from service.digest.followed import by_words_or_seeds, with_followed_authors
from service.digest.latex import readable, readable_segments
from service.digest.model import DigestItem, Segment
from service.ingest.normalize import arxiv_abs_url, arxiv_pdf_url, normalize_arxiv_id
from service.matching import (
    Interest,
    InterestError,
    MatchContext,
    PaperDoc,
    compile_interest,
    rank,
    semantic_available,
)
from service.matching.diversity import allocate
from service.matching.explain import completed
from service.matching.semantic import vector_from_bytes, vector_to_bytes
from service.models import Interest as InterestRow
from service.models import Paper, PaperEmbedding, Profile
from service.reader_models import model_for

if TYPE_CHECKING:
    from service.matching import Explanation, Match
    from service.matching.reader_model import ReaderModel
    from service.matching.semantic import Embedder

log = logging.getLogger(__name__)


class DatabaseEmbeddingCache:
    """Paper vectors in the paper_embeddings table, so each paper is embedded once.

    Keys are `embedding_key`s ("<paper id>#<text hash>"); the hash goes into the model column, so
    a paper whose abstract was corrected is embedded again rather than served a stale vector.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _split(model_id: str, key: str) -> tuple[int, str]:
        paper_id, _, text_hash = key.partition("#")
        return int(paper_id), f"{model_id}#{text_hash}"

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = {self._split(model_id, k): k for k in keys}
        found: dict[str, np.ndarray] = {}
        pairs = list(wanted)
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            rows = self.session.execute(
                select(PaperEmbedding.paper_id, PaperEmbedding.model, PaperEmbedding.vector).where(
                    tuple_(PaperEmbedding.paper_id, PaperEmbedding.model).in_(chunk)
                )
            )
            for paper_id, model, vector in rows:
                found[wanted[(paper_id, model)]] = vector_from_bytes(vector)
        return found

    def put_many(self, model_id: str, vectors: dict[str, np.ndarray]) -> None:
        for key, vector in vectors.items():
            paper_id, model = self._split(model_id, key)
            self.session.merge(PaperEmbedding(paper_id=paper_id, model=model, vector=vector_to_bytes(vector)))
        self.session.flush()


@lru_cache(maxsize=1)
def _embedder() -> Embedder:
    from service.matching import MiniLMEmbedder

    return MiniLMEmbedder()


def embedder_for(settings: Settings) -> Embedder | None:
    """The sentence embedder when enabled and installed; the lexical path works without it."""
    if not settings.semantic or not semantic_available():
        return None
    return _embedder()


def paper_doc(paper: Paper) -> PaperDoc:
    return PaperDoc(
        id=str(paper.id), title=paper.title, abstract=paper.abstract, authors=tuple(paper.authors or ())
    )


def to_interest(row: InterestRow, liked: list[str], disliked: list[str], settings: Settings) -> Interest:
    return Interest(
        name=row.name,
        keywords=row.keywords or "",
        query=row.query or "",
        exclude=tuple(e.strip() for e in (row.exclude or "").split(",") if e.strip()),
        seeds=tuple(str(s) for s in row.seeds or ()),
        liked=tuple(liked),
        disliked=tuple(disliked),
        threshold=row.threshold if row.threshold is not None else settings.default_threshold,
        top_k=row.top_k or settings.default_top_k,
        authors=tuple(str(a) for a in row.authors or ()),
    )


def _segments(explanation: Explanation) -> list[Segment]:
    snippet = explanation.snippet
    text = snippet.text
    segments: list[Segment] = []
    if snippet.clipped_start:
        segments.append(Segment("…"))
    at = 0
    for start, end in sorted(snippet.highlights):
        if start < at:
            continue
        if start > at:
            segments.append(Segment(text[at:start]))
        segments.append(Segment(text[start:end], hit=True))
        at = end
    if at < len(text):
        segments.append(Segment(text[at:]))
    if snippet.clipped_end:
        segments.append(Segment("…"))
    return segments


def arxiv_id_of(paper: Paper) -> str | None:
    """The paper's arXiv id, or the one its arXiv link names (papers stored before ids were read)."""
    if paper.arxiv_id:
        return paper.arxiv_id
    return normalize_arxiv_id(paper.url) if paper.url and "arxiv.org/" in paper.url else None


def paper_url(paper: Paper) -> str:
    """Where the title links: the arXiv abstract page when the id is known, else the paper's own
    page, else an arXiv title search (never nothing)."""
    arxiv_id = arxiv_id_of(paper)
    if arxiv_id:
        return arxiv_abs_url(arxiv_id)
    if paper.url:
        return paper.url
    return "https://arxiv.org/search/?" + urlencode({"query": paper.title, "searchtype": "title"})


def to_item(paper: Paper, match: Match, interest: str, keywords: str = "") -> DigestItem:
    """A digest item: LaTeX shown as text (the stored paper keeps it), and a true why-line."""
    explanation = match.explanation
    terms_found = [*explanation.phrases, *(t for t in explanation.terms if t not in explanation.phrases)]
    arxiv_id = arxiv_id_of(paper)
    return DigestItem(
        paper_id=paper.id,
        title=readable(paper.title),
        url=paper_url(paper),
        authors=[readable(name) for name in paper.authors or []],
        author_count=paper.author_count,
        organization=paper.organization,
        published_on=paper.published_on,
        upvotes=paper.upvotes,
        code_url=paper.code_url,
        score=round(match.score, 4),
        why=readable(explanation.summary(interest)),
        snippet=readable_segments(_segments(explanation)),
        matched_terms=terms_found,
        interest=interest,
        pdf_url=arxiv_pdf_url(arxiv_id) if arxiv_id else None,
    )


_CONTEXTS: OrderedDict[tuple[object, ...], MatchContext] = OrderedDict()
_CONTEXTS_LOCK = threading.Lock()
CONTEXTS_KEPT = 4


def match_context(
    session: Session, pool: list[PaperDoc], references: list[PaperDoc], embedder: Embedder | None
) -> MatchContext:
    """The matching context for this pool, shared by every profile that ranks the same papers.

    A dispatch pass ranks thousands of subscriptions over the same day's papers: building the index
    (and the neighbour graph) once instead of once per subscription is most of the pass's cost. The
    key holds the papers' texts, so an edited abstract never meets a stale index.
    """
    key = (embedder.model_id if embedder is not None else None, tuple(pool), tuple(references))
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
        if context is not None:
            _CONTEXTS.move_to_end(key)
            return context
    context = MatchContext(
        pool,
        references=references,
        embedder=embedder,
        cache=DatabaseEmbeddingCache(session) if embedder is not None else None,
    )
    with _CONTEXTS_LOCK:
        _CONTEXTS[key] = context
        while len(_CONTEXTS) > CONTEXTS_KEPT:
            _CONTEXTS.popitem(last=False)
    return context


def rank_papers(
    session: Session,
    profile: Profile,
    papers: Sequence[Paper],
    *,
    interests: list[str] | None = None,
    settings: Settings | None = None,
) -> list[DigestItem]:
    """The papers the profile's interests (all, or those named) want, best first, with reasons.

    A paper matched by several interests appears once, under the interest that scored it highest;
    places are shared across interests (diversity.allocate), so the first ones show every interest.
    An interest that cannot be matched (nothing to match on) is skipped with a warning.
    """
    settings = settings or get_settings()
    rows = [i for i in profile.interests if interests is None or i.name in interests]
    if not papers or not rows:
        return []
    liked = [str(f.paper_id) for f in profile.feedback if f.relevant]
    disliked = [str(f.paper_id) for f in profile.feedback if not f.relevant]
    reference_ids = {int(pid) for row in rows for pid in row.seeds or ()} | {int(p) for p in liked + disliked}
    pool_ids = {p.id for p in papers}
    references = [
        paper_doc(p) for p in session.scalars(select(Paper).where(Paper.id.in_(reference_ids - pool_ids)))
    ]
    embedder = embedder_for(settings)
    context = match_context(session, [paper_doc(p) for p in papers], references, embedder)
    # The reader's learned scorer (service/reader_models.py), shared by all the profile's interests.
    model = model_for(session, profile, embedder, settings) if embedder is not None else None
    return rank_in_context(context, profile.name, rows, papers, liked, disliked, settings, model=model)


def rank_in_context(
    context: MatchContext,
    profile_name: str,
    rows: Sequence[InterestRow],
    papers: Sequence[Paper],
    liked: list[str],
    disliked: list[str],
    settings: Settings,
    limit: int | None = None,
    *,
    model: ReaderModel | None = None,
    candidates: Collection[str] | None = None,
    lookup: Mapping[str, Paper] | None = None,
) -> list[DigestItem]:
    """rank_papers' core: the interests `rows` against `papers` (the candidates) of a built context.

    The context may hold more papers than the candidates (a pass's shared pool): they inform the
    statistics but are never returned. `limit`: at most this many papers per interest are ranked and
    explained (a digest of n papers never needs more than each interest's n best). `model` is the
    reader's learned scorer, where there is one. A pool gives the candidates' ids as context rows
    (`candidates`, ranking.CandidateRows) and its papers by id (`lookup`, a superset of `papers`), so
    that no profile walks the whole pool in Python.
    """
    by_id = lookup if lookup is not None else {str(p.id): p for p in papers}
    wanted = candidates if candidates is not None else by_id.keys()
    best: dict[str, tuple[Match, InterestRow]] = {}
    for row in rows:
        try:
            compiled = compile_interest(replace(to_interest(row, liked, disliked, settings), model=model))
        except InterestError as exc:
            log.warning("profile %s interest %r skipped: %s", profile_name, row.name, exc)
            continue
        if not by_words_or_seeds(compiled):
            continue  # followed authors only: followed_author_items below
        top_k = min(compiled.interest.top_k, limit) if limit is not None else None
        matches = rank(
            compiled, context, candidates=wanted, top_k=top_k, explained=not settings.digest_cutoff
        )
        if settings.digest_cutoff:
            # The cut-off reads brief explanations; only the papers it keeps are explained in full.
            matches = cut_off(matches, seeded=bool(compiled.positive_seeds))
            for match in matches:
                match.explanation = completed(
                    compiled, context, context.row[match.paper_id], match.explanation
                )
        for match in matches:
            if match.paper_id not in best or match.score > best[match.paper_id][0].score:
                best[match.paper_id] = (match, row)
    # Places shared across interests: a reader of three topics sees each (service/matching/diversity.py).
    ordered = allocate(
        list(best.values()), lambda pair: pair[1].name, lambda pair: pair[0].score, semantic=context.semantic
    )
    items = [to_item(by_id[m.paper_id], m, row.name, row.keywords or "") for m, row in ordered]
    return with_followed_authors(items, rows, papers)
