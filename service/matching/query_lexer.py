"""The query language's lexer: characters in, lexemes (with their positions) out.

Split from query.py so that the grammar stays readable; :class:`QueryError` lives here because
the lexer is the first to raise it (query.py re-exports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPERATORS", "Lexeme", "QueryError", "lex"]

OPERATORS = {"AND", "OR", "NOT"}
# A word runs until whitespace or a character with a meaning in the grammar.
_WORD = re.compile(r'[^\s()",^:*]+')
_SINGLES = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", "^": "CARET", "*": "STAR", ":": "COLON"}


class QueryError(ValueError):
    """A query that cannot be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, query: str, position: int) -> None:
        self.message = message
        self.query = query
        self.position = max(0, min(position, len(query)))
        line = query.replace("\n", " ").replace("\t", " ")
        super().__init__(f"{message} at position {self.position}\n  {line}\n  {' ' * self.position}^")


@dataclass(slots=True)
class Lexeme:
    kind: str  # WORD PHRASE LPAREN RPAREN COMMA CARET STAR COLON OP MINUS END
    text: str
    start: int


def lex(text: str) -> list[Lexeme]:
    """The lexemes of ``text``, ending with an END lexeme at ``len(text)``."""
    out: list[Lexeme] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SINGLES:
            out.append(Lexeme(_SINGLES[ch], ch, i))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError("unterminated phrase: missing closing quote", text, i)
            out.append(Lexeme("PHRASE", text[i + 1 : end], i))
            i = end + 1
        elif ch == "-":
            # "-word" and "-(...)" exclude; a dash standing alone is punctuation.
            if i + 1 < len(text) and not text[i + 1].isspace():
                out.append(Lexeme("MINUS", ch, i))
            i += 1
        else:
            match = _WORD.match(text, i)
            if match is None:  # a character Python calls space but the pattern does not
                i += 1
                continue
            word = match.group()
            out.append(Lexeme("OP" if word in OPERATORS else "WORD", word, i))
            i = match.end()
    out.append(Lexeme("END", "", len(text)))
    return out
