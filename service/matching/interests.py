"""An interest as the matcher sees it, and its compiled (parsed, validated) form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from .normal_form import Conjunction, TooComplex, to_dnf
from .query import Node, Not, Phrase, Query, QueryError, Term, parse_query

if TYPE_CHECKING:
    from .reader_model import ReaderModel

__all__ = ["CompiledInterest", "Interest", "InterestError", "compile_interest", "positive_leaves"]


class InterestError(ValueError):
    """An interest that cannot be matched; names the part (``keywords``, ``query``...) at fault."""

    def __init__(self, part: str, message: str, cause: QueryError | None = None) -> None:
        self.part = part
        self.cause = cause
        super().__init__(f"{part}: {message}")


@dataclass(frozen=True, slots=True)
class Interest:
    """One named interest of a subscriber, in plain values (the DB layer maps rows onto it).

    ``keywords`` rank (a paper without them can still come through by meaning or seeds);
    ``query`` and ``exclude`` filter (a paper that fails them never appears). ``seeds``,
    ``liked`` and ``disliked`` are paper ids. ``threshold`` is in the unit of
    :attr:`Match.score`: standard deviations above the average paper of the pool.
    ``model`` is the reader's learned scorer (reader_model.py), blended in when present.
    """

    name: str
    keywords: str = ""
    query: str = ""
    exclude: Sequence[str] = ()
    seeds: Sequence[str] = ()
    liked: Sequence[str] = ()
    disliked: Sequence[str] = ()
    threshold: float | None = None
    top_k: int = 20
    authors: Sequence[str] = ()  # followed author names (service.matching.authors)
    model: ReaderModel | None = None


@dataclass(frozen=True, slots=True)
class CompiledInterest:
    interest: Interest
    keywords: Query | None
    query: Query | None
    exclude: tuple[Node, ...] = field(default_factory=tuple)
    # Normal forms for the percolator, computed once while validating.
    keywords_dnf: tuple[Conjunction, ...] = ()
    query_dnf: tuple[Conjunction, ...] = ()
    exclude_dnf: tuple[Conjunction, ...] = ()

    @property
    def positives(self) -> list[Term | Phrase]:
        """Every term and phrase that counts for the paper (for scoring and explanations)."""
        leaves: list[Term | Phrase] = []
        for parsed in (self.keywords, self.query):
            if parsed is not None:
                leaves.extend(positive_leaves(parsed.root))
        return leaves

    @property
    def positive_seeds(self) -> list[str]:
        return [*self.interest.seeds, *self.interest.liked]


def positive_leaves(node: Node) -> list[Term | Phrase]:
    if isinstance(node, Term | Phrase):
        return [node]
    if isinstance(node, Not):
        return []
    return [leaf for child in node.children for leaf in positive_leaves(child)]


@lru_cache(maxsize=8192)
def _parsed(text: str) -> tuple[Query, tuple[Conjunction, ...]]:
    """A text's query and its normal form, which refuses what the percolator cannot index. Kept: a
    pass compiles a profile's interests twice (the pool's screen, then the ranker), and the trees are
    immutable."""
    query = parse_query(text)
    return query, tuple(to_dnf(query.root))


def compile_interest(interest: Interest) -> CompiledInterest:
    """Parse every part; a QueryError becomes an InterestError naming the part."""
    if interest.top_k < 1:
        raise InterestError("top_k", f"must be at least 1, not {interest.top_k}")
    parsed: dict[str, Query | None] = {}
    forms: dict[str, tuple[Conjunction, ...]] = {"keywords": (), "query": (), "exclude": ()}
    for part in ("keywords", "query"):
        text = getattr(interest, part)
        try:
            if text.strip():
                parsed[part], forms[part] = _parsed(text)
            else:
                parsed[part] = None
        except QueryError as error:
            raise InterestError(part, str(error), error) from error
        except TooComplex as error:
            raise InterestError(part, str(error)) from error
    exclude: list[Node] = []
    for i, text in enumerate(interest.exclude):
        try:
            query, form = _parsed(text)
            exclude.append(query.root)
            forms["exclude"] += form
        except TooComplex as error:
            raise InterestError(f"exclude[{i}]", str(error)) from error
        except QueryError as error:
            raise InterestError(f"exclude[{i}]", str(error), error) from error
    if (
        parsed["keywords"] is None
        and parsed["query"] is None
        and not interest.seeds
        and not interest.liked
        and not interest.authors
    ):
        raise InterestError("interest", "needs keywords, a query, seed papers, liked papers or authors")
    return CompiledInterest(
        interest,
        parsed["keywords"],
        parsed["query"],
        tuple(exclude),
        forms["keywords"],
        forms["query"],
        forms["exclude"],
    )


# Excluded parts go first (with what they exclude), then the operators and punctuation.
_EXCLUDED = re.compile(r'(?:\bNOT\s+|(?:^|(?<=[\s(,]))-)(?:\([^)]*\)?|"[^"]*"?|\S+)')
_SYNTAX = re.compile(r'\^\d*\.?\d+|\b(?:AND|OR)\b|\b(?:title|abstract|author):|[()"*]')


def plain_text(query: Query) -> str:
    """The words of a query without its syntax: what the sentence embedding reads."""
    text = _SYNTAX.sub(" ", _EXCLUDED.sub(" ", query.text))
    return re.sub(r"\s*,[\s,]*", ", ", re.sub(r"\s+", " ", text)).strip(" ,")
