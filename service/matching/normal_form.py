"""Queries rewritten as alternatives of conjunctions, the shape the percolator indexes."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from .documents import AnalyzedPaper
from .lexical import phrase_occurs
from .query import And, Node, Not, Phrase, Term

__all__ = ["MAX_CONJUNCTIONS", "Conjunction", "Literal", "TooComplex", "to_dnf"]

# "(a OR b) AND (c OR d) AND ..." multiplies out; past this it is refused, not slowly matched.
MAX_CONJUNCTIONS = 256


class TooComplex(ValueError):
    """A query whose normal form has more than MAX_CONJUNCTIONS alternatives."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A feature of a paper: a term (or prefix) in the text or in one field."""

    term: str
    field: str | None = None
    prefix: bool = False

    @staticmethod
    def of(term: Term) -> Literal:
        return Literal(term.text, term.field, term.prefix)

    @staticmethod
    def weighted(leaf: Term | Phrase) -> list[tuple[Literal, float]]:
        if isinstance(leaf, Term):
            return [(Literal.of(leaf), leaf.weight)]
        return [(Literal(t, leaf.field), leaf.weight) for t in leaf.terms]


@dataclass(frozen=True, slots=True)
class Conjunction:
    """All ``positive`` present, no ``negative``; phrases checked on positions afterwards."""

    positive: tuple[Literal, ...] = ()
    negative: tuple[Literal, ...] = ()
    phrases: tuple[Phrase, ...] = ()
    negative_phrases: tuple[Phrase, ...] = ()

    def merge(self, other: Conjunction) -> Conjunction:
        return Conjunction(
            self.positive + other.positive,
            self.negative + other.negative,
            self.phrases + other.phrases,
            self.negative_phrases + other.negative_phrases,
        )

    def verify(self, paper: AnalyzedPaper) -> bool:
        """The positional part: every phrase occurs, no excluded phrase does."""
        return all(_occurs(paper, p) for p in self.phrases) and not any(
            _occurs(paper, p) for p in self.negative_phrases
        )


def _occurs(paper: AnalyzedPaper, phrase: Phrase) -> bool:
    fields = ("title", "abstract") if phrase.field is None else (phrase.field,)
    return any(phrase_occurs(paper.field_terms(f), phrase) for f in fields)


def _check(conjunctions: list[Conjunction]) -> list[Conjunction]:
    if len(conjunctions) > MAX_CONJUNCTIONS:
        raise TooComplex(
            f"the query expands to more than {MAX_CONJUNCTIONS} alternatives; "
            "split it into several keywords or interests"
        )
    return conjunctions


def to_dnf(node: Node, negated: bool = False) -> list[Conjunction]:
    """Alternatives of conjunctions equivalent to ``node`` (negations pushed to the leaves)."""
    if isinstance(node, Term):
        literal = Literal.of(node)
        return [Conjunction(negative=(literal,))] if negated else [Conjunction(positive=(literal,))]
    if isinstance(node, Phrase):
        if negated:
            return [Conjunction(negative_phrases=(node,))]
        words = tuple(Literal(t, node.field) for t in node.terms)
        return [Conjunction(positive=words, phrases=(node,))]
    if isinstance(node, Not):
        return to_dnf(node.child, not negated)
    # De Morgan: NOT (a AND b) is (NOT a) OR (NOT b), and the other way round.
    conjunctive = isinstance(node, And) != negated
    parts = [to_dnf(child, negated) for child in node.children]
    if not conjunctive:
        return _check([conj for part in parts for conj in part])
    combined = [Conjunction()]
    for part in parts:
        combined = _check([a.merge(b) for a, b in product(combined, part)])
    return combined
