"""Followed authors: is "LeCun, Y." the "Yann LeCun" a reader follows?

Names are compared on a key: accents folded (ö also read as oe), case folded, the surname found
whether written first with a comma ("LeCun, Y.") or last ("Yann LeCun"), particles kept with it
("van der Berg", "Le Cun" = "LeCun"), given names cut into initials where one side only has
initials ("J.-P." = "Jean-Pierre"). Two names are the same person when the surnames agree and
each given name both sides have agrees (equal, or one is the other's initial). A bare surname
matches every given name: the preview of stored papers shows the namesakes before following.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["AuthorMatcher", "NameKey", "name_key", "same_person"]

# Lower-case words that belong to the surname that follows them.
_PARTICLES = frozenset(
    [
        "van",
        "von",
        "der",
        "den",
        "de",
        "del",
        "della",
        "di",
        "da",
        "du",
        "la",
        "le",
        "dos",
        "das",
        "ter",
        "ten",
    ]
)
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*\.?", re.UNICODE)


def _fold(text: str) -> str:
    """Accents removed, case folded."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _compact(words: Iterable[str]) -> str:
    return "".join(re.sub(r"['’.]", "", w) for w in words)


@dataclass(frozen=True)
class NameKey:
    """A name reduced for comparison: surname spellings, and given names in order (folded)."""

    surnames: frozenset[str]  # "lecun"; "schoelkopf" and "scholkopf" for "Schölkopf"
    given: tuple[str, ...]  # ("yann",), ("y",), ("jean", "pierre"), ("j", "p")

    def __bool__(self) -> bool:
        return bool(self.surnames)


def _words(part: str) -> list[str]:
    # Hyphenated given names count as two ("Jean-Pierre" -> jean, pierre; "J.-P." -> j, p).
    return [w for w in _TOKEN.findall(part.replace("-", " ")) if w.strip(".")]


def _is_initials(word: str) -> bool:
    bare = word.strip(".")
    return len(bare) == 1 or (word.endswith(".") and len(bare) <= 2) or (bare.isupper() and len(bare) <= 3)


def _split(name: str) -> tuple[list[str], list[str]]:
    """(given words, surname words) as written."""
    if "," in name:
        surname, _, given = name.partition(",")
        return _words(given), _words(surname)
    words = _words(name)
    while len(words) > 1 and words[-1].strip(".").casefold() in _SUFFIXES:
        words.pop()
    if not words:
        return [], []
    # "LeCun Y." / "Hinton GE": a surname followed only by initials (as PubMed writes names).
    if len(words) >= 2 and not _is_initials(words[0]) and all(_is_initials(w) for w in words[1:]):
        return words[1:], words[:1]
    start = len(words) - 1
    while start > 1 and words[start - 1].casefold() in _PARTICLES:
        start -= 1
    if start == 1 and len(words) > 2 and words[0].casefold() in _PARTICLES:
        start = 0  # "van Gogh" alone: no given name
    return words[:start], words[start:]


def _given_parts(words: Sequence[str]) -> tuple[str, ...]:
    parts: list[str] = []
    for word in words:
        folded = _fold(word).strip(".")
        # "GE" (PubMed initials, no dots) is two initials.
        if word.strip(".").isupper() and 1 < len(word.strip(".")) <= 3:
            parts.extend(folded)
        elif folded:
            parts.append(folded)
    return tuple(parts)


def name_key(name: str) -> NameKey:
    """The comparison key of an author name as any dump writes it."""
    given, surname = _split(" ".join(str(name).split()))
    if not surname:
        return NameKey(frozenset(), ())
    spellings = {_compact(_fold(w) for w in surname)}
    # Without its particles too ("van der Berg" vs "Berg"), and German umlauts spelled out.
    core = [w for w in surname if w.casefold() not in _PARTICLES] or surname
    spellings.add(_compact(_fold(w) for w in core))
    spellings.add(_compact(_fold(w.casefold().translate(_GERMAN)) for w in surname))
    return NameKey(frozenset(s for s in spellings if s), _given_parts(given))


def _given_agree(a: Sequence[str], b: Sequence[str]) -> bool:
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        if (len(x) == 1 and y.startswith(x)) or (len(y) == 1 and x.startswith(y)):
            continue
        return False
    return True


def same_person(a: NameKey | str, b: NameKey | str) -> bool:
    ka = a if isinstance(a, NameKey) else name_key(a)
    kb = b if isinstance(b, NameKey) else name_key(b)
    return bool(ka and kb and ka.surnames & kb.surnames and _given_agree(ka.given, kb.given))


class AuthorMatcher:
    """The followed names, keyed once; `matches` tells which of a paper's authors they are."""

    def __init__(self, followed: Iterable[str]) -> None:
        self.followed = [(name, name_key(name)) for name in followed if str(name).strip()]
        self._surnames = frozenset(s for _, key in self.followed for s in key.surnames)

    def __bool__(self) -> bool:
        return bool(self.followed)

    def matches(self, authors: Iterable[str]) -> list[tuple[str, str]]:
        """(paper's spelling, followed name) for each of the paper's authors someone follows."""
        found: list[tuple[str, str]] = []
        for author in authors:
            text = str(author)
            folded = _fold(text)
            # Cheap test first: most authors share no surname letters with anyone followed.
            if not any(s[:3] in _compact([folded]) for s in self._surnames):
                continue
            key = name_key(text)
            for name, followed in self.followed:
                if same_person(key, followed):
                    found.append((text, name))
                    break
        return found
