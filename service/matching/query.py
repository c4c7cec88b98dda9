"""The profile query language: keywords, phrases, boolean operators, fields, weights.

Grammar (operators are upper case, as in Lucene, so a lower-case "and" stays a word)::

    list     := clause ("," clause)*            commas separate weighted keywords
    clause   := or
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*           juxtaposition means AND
    unary    := ("NOT" | "-") unary | primary ["^" number]
    primary  := "(" or ")" | field ":" primary | '"' words '"' | word | word "*"
    field    := "title" | "abstract" | "author"

Examples: ``"sparse attention"^2, kv cache, linear attention`` or
``title:(quantiz* OR "low bit") AND NOT author:smith``.
A malformed query raises :class:`QueryError` with the character position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .analysis import analyze, fold
from .query_lexer import Lexeme, QueryError, lex

__all__ = [
    "FIELDS",
    "And",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Query",
    "QueryError",
    "Term",
    "parse_query",
]

FIELDS = ("title", "abstract", "author")
MAX_LENGTH = 2_000
MAX_DEPTH = 32
_JOINER = re.compile("[-\u2010\u2011]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")


@dataclass(frozen=True, slots=True)
class Term:
    """One analysed term; ``prefix`` means the folded text is a prefix (``quantiz*``)."""

    text: str
    field: str | None = None
    prefix: bool = False
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Phrase:
    """Terms that must appear in this order; ``offsets`` keep gaps left by stop words."""

    terms: tuple[str, ...]
    offsets: tuple[int, ...]
    field: str | None = None
    weight: float = 1.0
    source: str = ""
    slop: int = 0


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | Phrase | And | Or | Not


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: comma-separated clauses, any of which may match."""

    text: str
    clauses: tuple[Node, ...] = field(default_factory=tuple)

    @property
    def root(self) -> Node:
        return self.clauses[0] if len(self.clauses) == 1 else Or(self.clauses)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexemes = lex(text)
        self.i = 0
        self.depth = 0

    def descend(self, lexeme: Lexeme) -> None:
        # Recursion is bounded so that "((((..." is an error, not a RecursionError.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested too deeply (at most {MAX_DEPTH} levels)", lexeme)

    def peek(self) -> Lexeme:
        return self.lexemes[self.i]

    def take(self) -> Lexeme:
        lexeme = self.lexemes[self.i]
        self.i += 1
        return lexeme

    def error(self, message: str, lexeme: Lexeme | None = None) -> QueryError:
        return QueryError(message, self.text, (lexeme or self.peek()).start)

    def parse(self) -> Query:
        clauses: list[Node] = []
        while True:
            start = self.peek()
            if start.kind in ("COMMA", "END"):
                if start.kind == "END" and clauses:
                    break
                raise self.error("empty keyword", start)
            node = self.parse_or(None)
            if node is None:
                raise self.error("nothing to search for (only stop words, emoji or punctuation)", start)
            clauses.append(node)
            nxt = self.take()
            if nxt.kind == "END":
                break
            if nxt.kind != "COMMA":
                raise self.error(f"unexpected {nxt.text!r}", nxt)
        return Query(self.text, tuple(clauses))

    def parse_or(self, fld: str | None) -> Node | None:
        children = [self.parse_and(fld)]
        while self.peek().kind == "OP" and self.peek().text == "OR":
            op = self.take()
            if self.peek().kind in ("END", "RPAREN", "COMMA", "OP") and self.peek().text != "NOT":
                raise self.error("OR needs something on its right", op)
            children.append(self.parse_and(fld))
        kept = tuple(c for c in children if c is not None)
        return None if not kept else kept[0] if len(kept) == 1 else Or(kept)

    def parse_and(self, fld: str | None) -> Node | None:
        first = self.peek()
        if first.kind == "OP" and first.text in ("AND", "OR"):
            raise self.error(f"{first.text} needs something on its left", first)
        children = [self.parse_unary(fld)]
        while True:
            nxt = self.peek()
            if nxt.kind in ("END", "RPAREN", "COMMA") or (nxt.kind == "OP" and nxt.text == "OR"):
                break
            if nxt.kind == "OP" and nxt.text == "AND":
                self.take()
                after = self.peek()
                if after.kind in ("END", "RPAREN", "COMMA") or (after.kind == "OP" and after.text != "NOT"):
                    raise self.error("AND needs something on its right", nxt)
            children.append(self.parse_unary(fld))
        kept = tuple(c for c in children if c is not None)
        return None if not kept else kept[0] if len(kept) == 1 else And(kept)

    def parse_unary(self, fld: str | None) -> Node | None:
        lexeme = self.peek()
        if (lexeme.kind == "OP" and lexeme.text == "NOT") or lexeme.kind == "MINUS":
            self.take()
            if self.peek().kind in ("END", "RPAREN", "COMMA") or self.peek().text in ("AND", "OR"):
                raise self.error("NOT needs something to exclude", lexeme)
            self.descend(lexeme)
            child = self.parse_unary(fld)
            self.depth -= 1
            return None if child is None else Not(child)
        node = self.parse_primary(fld)
        if self.peek().kind == "CARET":
            caret = self.take()
            number = self.peek()
            if number.kind != "WORD" or not _NUMBER.fullmatch(number.text):
                raise self.error("a weight must be a number, as in ^2 or ^0.5", caret)
            self.take()
            weight = float(number.text)
            if not 0 < weight <= 100:
                raise self.error("a weight must be greater than 0 and at most 100", number)
            node = None if node is None else _reweight(node, weight)
        return node

    def parse_primary(self, fld: str | None) -> Node | None:
        lexeme = self.take()
        if lexeme.kind == "LPAREN":
            if self.peek().kind == "RPAREN":
                raise self.error("empty parentheses", lexeme)
            self.descend(lexeme)
            node = self.parse_or(fld)
            self.depth -= 1
            closing = self.take()
            if closing.kind != "RPAREN":
                raise self.error("missing closing parenthesis for this one", lexeme)
            return node
        if lexeme.kind == "PHRASE":
            return _phrase(lexeme.text, fld, self, lexeme)
        if lexeme.kind == "WORD":
            if self.peek().kind == "COLON":
                name = fold(lexeme.text)
                if name not in FIELDS:
                    message = f"unknown field {lexeme.text!r} (use title:, abstract: or author:)"
                    raise self.error(message, lexeme)
                self.take()
                if self.peek().kind in ("END", "RPAREN", "COMMA", "COLON", "CARET"):
                    raise self.error(f"{name}: needs a word, a phrase or parentheses after it", lexeme)
                self.descend(lexeme)
                node = self.parse_primary(name)
                self.depth -= 1
                return node
            if self.peek().kind == "STAR":
                return _prefix(lexeme, self.take(), fld, self)
            return _word(lexeme.text, fld)
        what = "end of query" if lexeme.kind == "END" else repr(lexeme.text)
        raise self.error(f"unexpected {what}", lexeme)


def _word(text: str, fld: str | None) -> Node | None:
    tokens = analyze(text)
    if not tokens:
        return None
    if len(tokens) == 1:
        return Term(tokens[0].term, fld)
    # A compound ("KV-cache") analyses to its joined form plus its parts: match either.
    joined, parts = tokens[0], tokens[1:]
    phrase = Phrase(
        tuple(t.term for t in parts), tuple(t.position - parts[0].position for t in parts), fld, source=text
    )
    return Or((Term(joined.term, fld), phrase)) if len(parts) > 1 else Term(joined.term, fld)


def _phrase(text: str, fld: str | None, parser: _Parser, lexeme: Lexeme) -> Node | None:
    if not text.strip():
        raise parser.error("empty phrase", lexeme)
    # Compounds inside a phrase are matched by their parts, which keep their positions;
    # the joined form is the one token whose span still holds the joiner.
    tokens = [t for t in analyze(text) if not _JOINER.search(text, t.start, t.end)]
    if not tokens:
        return None
    if len(tokens) == 1:
        return Term(tokens[0].term, fld)
    base = tokens[0].position
    return Phrase(tuple(t.term for t in tokens), tuple(t.position - base for t in tokens), fld, source=text)


def _prefix(word: Lexeme, star: Lexeme, fld: str | None, parser: _Parser) -> Node:
    folded = fold(word.text)
    if len(folded) < 3 or not folded.isalnum():
        raise parser.error("a wildcard needs at least 3 letters or digits before the *", star)
    return Term(folded, fld, prefix=True)


def _reweight(node: Node, weight: float) -> Node:
    if isinstance(node, Term):
        return Term(node.text, node.field, node.prefix, node.weight * weight)
    if isinstance(node, Phrase):
        return Phrase(node.terms, node.offsets, node.field, node.weight * weight, node.source, node.slop)
    if isinstance(node, And):
        return And(tuple(_reweight(c, weight) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(_reweight(c, weight) for c in node.children))
    return node  # a weight on an exclusion changes nothing


def parse_query(text: str) -> Query:
    """Parse ``text``; raise :class:`QueryError` (with position) when it is malformed."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"query too long ({len(text)} characters, at most {MAX_LENGTH})", text[:80], 80)
    if not text.strip():
        raise QueryError("empty query", text, 0)
    return _Parser(text).parse()
