"""Text analysis shared by papers and profiles: folding, tokens, stems, stop words.

Papers and profiles must go through exactly the same steps, otherwise a keyword
would never meet the words it was written for. Offsets always point into the
*original* text, so explanations can highlight what the reader actually sees.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

__all__ = [
    "STOP_WORDS",
    "Token",
    "analyze",
    "fold",
    "positions",
    "stem",
    "strip_latex_accents",
    "terms",
]

# A compact English list (Lucene's + a few academic fillers that carry no topic).
STOP_WORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves via using use used based new paper show shows shown
    present presents study studies et al""".split()  # noqa: SIM905 - a word list reads better as text
)

# A word is a run of letters/digits; hyphen-like joiners and a dot between digits keep
# compounds such as "KV-cache", "LLaMA-2" and "2.5" together, "3D" is one run already.
_JOINERS = "-\u2010\u2011"
_WORD = re.compile(rf"[^\W_]+(?:(?:[{_JOINERS}]|(?<=\d)\.(?=\d))[^\W_]+)*")
_SPLIT = re.compile(rf"[{_JOINERS}]")
_LATEX_ACCENT = re.compile(r"\\[`'^\"~=.uvHcdbtk]\s*\{?\\?([A-Za-z])\}?")
_ACRONYM_PLURAL = re.compile(r"[A-Z0-9]{2,}s")
_STEMMER = Stemmer.Stemmer("english")


@dataclass(frozen=True, slots=True)
class Token:
    """One indexed term with where it came from in the original text."""

    term: str
    position: int
    start: int
    end: int


def strip_latex_accents(text: str) -> str:
    """Turn TeX accents such as ``Bal\\'azs`` into plain letters (arXiv author lists use them)."""
    return _LATEX_ACCENT.sub(r"\1", text)


def _fold_word(word: str) -> str:
    # "PDEs", "LLMs", "GPUs": the stemmer cannot see that the "s" is a plural on an acronym.
    if _ACRONYM_PLURAL.fullmatch(word):
        word = word[:-1]
    return fold(word)


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """NFKC, casefold and strip accents, so "Schrödinger", "SCHRODINGER" and "ﬁnite" compare equal."""
    text = unicodedata.normalize("NFKC", word).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball (Porter 2) English stem of an already folded word; short words and numbers stay."""
    if len(word) <= 2 or not word.isalpha():
        return word
    return _STEMMER.stemWord(word)


@lru_cache(maxsize=500_000)
def _term(word: str, keep_stop_words: bool) -> str | None:
    """Folded, stemmed form of one word, or None for a stop word (cached: words repeat a lot)."""
    folded = _fold_word(word)
    if not keep_stop_words and folded in STOP_WORDS:
        return None
    return stem(folded)


def analyze(text: str, *, keep_stop_words: bool = False) -> list[Token]:
    """Tokens of ``text``: folded, stemmed, stop words dropped (their positions still count).

    A compound such as ``KV-cache`` yields its joined form ``kvcache`` at the position of
    its first part, then each part at its own position, so the phrase "kv cache" and the
    single word "kvcache" both find it.
    """
    tokens: list[Token] = []
    position = 0
    for match in _WORD.finditer(text):
        raw = match.group()
        start = match.start()
        parts = _SPLIT.split(raw) if _SPLIT.search(raw) else None
        if parts and len(parts) > 1:
            tokens.append(Token(stem(_fold_word("".join(parts))), position, start, match.end()))
            offset = start
            for part in parts:
                term = _term(part, keep_stop_words)
                if term is not None:
                    tokens.append(Token(term, position, offset, offset + len(part)))
                offset += len(part) + 1
                position += 1
            continue
        term = _term(raw, keep_stop_words)
        if term is not None:
            tokens.append(Token(term, position, start, match.end()))
        position += 1
    return tokens


def positions(text: str, *, keep_stop_words: bool = False) -> list[tuple[str, int]]:
    """(term, position) pairs of :func:`analyze` without offsets: the fast path for indexing."""
    out: list[tuple[str, int]] = []
    position = 0
    for raw in _WORD.findall(text):
        if "-" in raw or "\u2010" in raw or "\u2011" in raw:
            out.extend((t.term, position + t.position) for t in analyze(raw, keep_stop_words=keep_stop_words))
            position += len(_SPLIT.split(raw))
            continue
        term = _term(raw, keep_stop_words)
        if term is not None:
            out.append((term, position))
        position += 1
    return out


def terms(text: str) -> list[str]:
    """Just the terms of :func:`analyze`, for callers that need no offsets."""
    return [term for term, _ in positions(text)]
