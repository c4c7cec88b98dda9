"""Why a paper matched: the words and phrases found, the seeds it resembles, a snippet.

Highlights are character spans into the original title/snippet text, never markup:
renderers (email HTML, Slack mrkdwn, the terminal) escape the text and add their own marks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .analysis import analyze
from .interests import CompiledInterest
from .lexical import phrase_occurs
from .memo import remembered
from .query import Phrase, Term

if TYPE_CHECKING:
    from .documents import PaperDoc
    from .ranking import MatchContext, Ranking

__all__ = [
    "Explanation",
    "KeywordEvidence",
    "SeedEvidence",
    "Snippet",
    "brief",
    "completed",
    "explain",
    "make_snippet",
]

SNIPPET_CHARS = 280
SNIPPET_LEAD = 60  # context kept before the first highlighted word of the window
SHARED_TERMS = 5
SEED_EVIDENCE = 3
# (keyword, paper row) evidence a context keeps before starting over (~200 bytes each).
KEYWORD_MEMO_SIZE = 200_000
# Shown parts of explanations (words, highlights, snippet) a context keeps, by paper and words found.
SHOWN_MEMO_SIZE = 50_000

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Snippet:
    """A window of the abstract; ``highlights`` are [start, end) offsets into ``text``."""

    text: str
    highlights: tuple[Span, ...] = ()
    clipped_start: bool = False
    clipped_end: bool = False


@dataclass(frozen=True, slots=True)
class SeedEvidence:
    paper_id: str
    title: str
    similarity: float


@dataclass(frozen=True, slots=True)
class KeywordEvidence:
    """One keyword as the subscriber wrote it, and how much of it the paper holds.

    ``words`` are the keyword's own words found in the paper (as written in the keyword);
    ``whole`` says the keyword occurs as written (its words in order, side by side)."""

    keyword: str
    words: tuple[str, ...]
    total: int
    whole: bool

    @property
    def share(self) -> float:
        return len(self.words) / self.total if self.total else 0.0

    def describe(self) -> str:
        if self.whole or (self.total == 1 and self.words):
            return f"“{self.keyword}”"
        return f"{', '.join(self.words)} ({len(self.words)} of {self.total} words of “{self.keyword}”)"


@dataclass(slots=True)
class Explanation:
    terms: list[str] = field(default_factory=list)  # profile words found, as the paper spells them
    phrases: list[str] = field(default_factory=list)  # quoted phrases found
    seeds: list[SeedEvidence] = field(default_factory=list)  # the seed/liked papers it is closest to
    shared_terms: list[str] = field(default_factory=list)  # words it shares with those seeds
    title_highlights: tuple[Span, ...] = ()
    snippet: Snippet = field(default_factory=lambda: Snippet(""))
    signals: dict[str, float] = field(default_factory=dict)
    keywords: list[KeywordEvidence] = field(default_factory=list)  # each keyword of the interest

    def summary(self, interest: str = "") -> str:
        """One true line: the words that matched, the seed it resembles, or closeness in meaning.

        e.g. ``matches “kv cache”; sparse, attention (2 of 3 words of “sparse attention models”)``,
        ``resembles “Efficient Transformers”``, ``close in meaning to your interest “RLHF”``."""
        bits = []
        found = [k for k in self.keywords if k.words]
        if found:
            bits.append("matches " + "; ".join(k.describe() for k in found[:4]))
        else:
            words = [f"“{p}”" for p in self.phrases] + [t for t in self.terms if t not in self.phrases]
            if words:
                bits.append("matches " + ", ".join(words[:6]))
        if self.seeds:
            bits.append("resembles " + "; ".join(f"“{s.title}”" for s in self.seeds[:1]))
        elif not bits and self.shared_terms:
            bits.append("shares " + ", ".join(self.shared_terms))
        if not bits:
            about = ", ".join(k.keyword for k in self.keywords) or interest
            return (
                f"close in meaning to your interest “{about}”"
                if about
                else "close in meaning to your interest"
            )
        said = " ".join(bits).casefold()
        if interest and interest != "default" and f"“{interest.casefold()}”" not in said:
            bits.append(f"for your interest “{interest}”")
        return "; ".join(bits)


def _matched_terms(compiled: CompiledInterest, context: MatchContext, row: int) -> tuple[set[str], list[str]]:
    paper = context.index.papers[row]
    found: set[str] = set()
    phrases: list[str] = []
    for leaf in compiled.positives:
        fields = ("title", "abstract") if leaf.field is None else (leaf.field,)
        if isinstance(leaf, Phrase):
            if any(phrase_occurs(paper.field_terms(f), leaf) for f in fields):
                found.update(leaf.terms)
                # A compound ("KV-cache") is one word to the reader: it shows among the terms.
                if leaf.source and " " in leaf.source.strip() and leaf.source not in phrases:
                    phrases.append(leaf.source)
            continue
        assert isinstance(leaf, Term)
        for f in fields:
            have = paper.field_terms(f)
            if not leaf.prefix:
                if leaf.text in have:
                    found.add(leaf.text)
                continue
            found.update(t for t in have if t.startswith(leaf.text))
    return found, phrases


# Commas separate keywords, except inside "quoted phrases"; weights (^2) and quotes are not words.
_KEYWORD = re.compile(r'(?:"[^"]*"|[^,"])+')
_DECORATION = re.compile(r'\^\d*\.?\d+|["()*]|\b(?:AND|OR|NOT)\b|\b(?:title|abstract|author):')


@lru_cache(maxsize=4096)
def _keywords(keywords: str) -> tuple[tuple[str, tuple[tuple[str, str], ...], Phrase | None], ...]:
    """Each keyword as written, its words (analysed term, as shown) and, for several words, the
    phrase they make; kept, as a pass explains paper after paper for the same interests."""
    parsed = []
    for raw in _KEYWORD.findall(keywords):
        keyword = " ".join(_DECORATION.sub(" ", raw).split())
        tokens = analyze(keyword)
        if not tokens:
            continue
        # A compound ("KV-cache") analyses to its joined form and its parts: count the joined one.
        seen: dict[int, tuple[str, str]] = {}
        for token in tokens:
            seen.setdefault(token.position, (token.term, keyword[token.start : token.end]))
        words = tuple(word for _, word in sorted(seen.items()))
        phrase = None
        if len(words) > 1:
            base = tokens[0].position
            phrase = Phrase(
                tuple(term for term, _ in words), tuple(p - base for p in sorted(seen)), source=keyword
            )
        parsed.append((keyword, words, phrase))
    return tuple(parsed)


def keyword_evidence(keywords: str, context: MatchContext, row: int) -> list[KeywordEvidence]:
    """How much of each keyword (as the subscriber wrote it) the paper's title and abstract hold.

    Kept per (keyword, paper) in the context's memo: a pass explains the same pool papers for
    profile after profile, and readers of one field write the same keywords."""
    return [
        remembered(
            context.keyword_memo,
            (keyword, row),
            KEYWORD_MEMO_SIZE,
            _keyword_in,
            (keyword, words, phrase, context, row),
        )
        for keyword, words, phrase in _keywords(keywords)
    ]


def _keyword_in(
    keyword: str, words: tuple[tuple[str, str], ...], phrase: Phrase | None, context: MatchContext, row: int
) -> KeywordEvidence:
    paper = context.index.papers[row]
    fields = [paper.field_terms("title"), paper.field_terms("abstract")]
    matched = tuple(dict.fromkeys(shown for term, shown in words if term in fields[0] or term in fields[1]))
    whole = phrase is not None and len(matched) == len(words)
    if whole:
        assert phrase is not None
        whole = any(phrase_occurs(f, phrase) for f in fields)
    return KeywordEvidence(keyword, matched, len(words), whole)


def _shared_with_seeds(context: MatchContext, row: int, seeds: list[int]) -> set[str]:
    if not seeds:
        return set()
    profile = np.asarray(context.tfidf[seeds].mean(axis=0)).ravel()
    paper = context.tfidf[row].toarray().ravel()
    weight = paper * profile
    best = np.argsort(-weight)[:SHARED_TERMS]
    names = context.index.terms_by_column
    return {names[c] for c in best if weight[c] > 0}


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[tuple[str, int, int], ...]:
    """A paper's analysed text, kept: a pass explains the same pool papers for profile after profile."""
    return tuple((t.term, t.start, t.end) for t in analyze(text))


@lru_cache(maxsize=4096)
def _places(text: str) -> dict[str, list[int]]:
    """Term -> indexes of its tokens in _tokens(text)."""
    places: dict[str, list[int]] = {}
    for i, (term, _, _) in enumerate(_tokens(text)):
        places.setdefault(term, []).append(i)
    return places


def _spans(text: str, wanted: set[str]) -> list[Span]:
    places = _places(text)
    tokens = _tokens(text)
    at = sorted(i for term in wanted for i in places.get(term, ()))
    return [(tokens[i][1], tokens[i][2]) for i in at]


@lru_cache(maxsize=65_536)
def _first_term(word: str) -> str | None:
    tokens = analyze(word)
    return tokens[0].term if tokens else None


def make_snippet(text: str, spans: list[Span], size: int = SNIPPET_CHARS) -> Snippet:
    """The window of ``text`` holding the most highlighted words, cut at word boundaries."""
    if len(text) <= size:
        return Snippet(text, tuple(spans))
    best_start, best_count = 0, -1
    for start, _ in spans or [(0, 0)]:
        lo = max(0, start - SNIPPET_LEAD)
        count = sum(1 for s, e in spans if s >= lo and e <= lo + size)
        if count > best_count:
            best_start, best_count = lo, count
    lo = best_start
    if lo > 0:
        space = text.find(" ", lo)
        lo = space + 1 if 0 <= space < lo + 30 else lo
    hi = min(len(text), lo + size)
    if hi < len(text):
        space = text.rfind(" ", lo, hi)
        hi = space if space > lo + size // 2 else hi
    kept = tuple((s - lo, e - lo) for s, e in spans if s >= lo and e <= hi)
    return Snippet(text[lo:hi], kept, clipped_start=lo > 0, clipped_end=hi < len(text))


def brief(compiled: CompiledInterest, context: MatchContext, row: int, ranking: Ranking) -> Explanation:
    """Only the keyword evidence and the signals: what deciding whether to send needs."""
    return Explanation(
        signals={name: round(float(values[row]), 4) for name, values in ranking.signals.items()},
        keywords=keyword_evidence(compiled.interest.keywords, context, row),
    )


def explain(compiled: CompiledInterest, context: MatchContext, row: int, ranking: Ranking) -> Explanation:
    """Build the explanation of pool paper ``row`` for this interest."""
    return completed(compiled, context, row, brief(compiled, context, row, ranking))


def completed(compiled: CompiledInterest, context: MatchContext, row: int, short: Explanation) -> Explanation:
    """The whole explanation of a paper whose :func:`brief` one is ``short``: a digest cuts its
    ranking on the brief ones (service/digest/cutoff.py) and completes only those it keeps."""
    found, phrases = _matched_terms(compiled, context, row)
    seed_rows = context.rows(compiled.positive_seeds)
    shared = _shared_with_seeds(context, row, seed_rows)
    evidence: list[SeedEvidence] = []
    if seed_rows:
        vectors = context.centred if context.centred is not None else context.tfidf
        sims = vectors[seed_rows] @ vectors[row].T
        sims = np.asarray(sims.toarray() if hasattr(sims, "toarray") else sims).ravel()
        for i in np.argsort(-sims)[:SEED_EVIDENCE]:
            seed = context.docs[seed_rows[i]]
            evidence.append(SeedEvidence(seed.id, seed.title, round(float(sims[i]), 3)))
    surface, shared_surface, title_spans, snippet = remembered(
        context.shown_memo,
        (row, frozenset(found), frozenset(shared)),
        SHOWN_MEMO_SIZE,
        _shown,
        (context.docs[row], found, shared),
    )
    return Explanation(
        terms=list(surface),
        phrases=phrases,
        seeds=evidence,
        shared_terms=list(shared_surface[:SHARED_TERMS]) if shared else [],
        title_highlights=title_spans,
        snippet=snippet,
        signals=short.signals,
        keywords=short.keywords,
    )


Shown = tuple[tuple[str, ...], tuple[str, ...], tuple[Span, ...], Snippet]


def _shown(doc: PaperDoc, found: set[str], shared: set[str]) -> Shown:
    """What an explanation shows of a paper, given the profile's words found in it and the terms it
    shares with the seeds: the words as the paper spells them, the shared terms, the highlights."""
    wanted = found | shared
    title_spans = _spans(doc.title, wanted)
    abstract_spans = _spans(doc.abstract, wanted)
    surface: list[str] = []
    folded: set[str] = set()
    for text, spans in ((doc.title, title_spans), (doc.abstract, abstract_spans)):
        for s, e in spans:
            word = text[s:e]
            if _first_term(word) in found and word.casefold() not in folded:
                surface.append(word)
                folded.add(word.casefold())
    shared_surface = sorted({doc.abstract[s:e].casefold() for s, e in abstract_spans} - folded)
    return (
        tuple(surface),
        tuple(shared_surface),
        tuple(title_spans),
        make_snippet(doc.abstract, abstract_spans),
    )
