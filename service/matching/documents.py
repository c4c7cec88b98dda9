"""Papers as the matcher sees them: plain objects in, analysed fields out (no database rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .analysis import positions, strip_latex_accents

__all__ = ["AUTHOR_GAP", "AnalyzedPaper", "PaperDoc", "analyze_paper", "paper_text"]

# Positions jump between authors so that a phrase never spans two people.
AUTHOR_GAP = 16


@dataclass(frozen=True, slots=True)
class PaperDoc:
    """What matching needs of a paper; the DB layer maps its rows onto this."""

    id: str
    title: str
    abstract: str = ""
    authors: Sequence[str] = ()


@dataclass(slots=True)
class AnalyzedPaper:
    """Term positions per field (title, abstract, author) and field lengths in tokens."""

    doc: PaperDoc
    positions: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)

    def field_terms(self, name: str) -> dict[str, list[int]]:
        return self.positions.get(name, {})

    def text_terms(self) -> set[str]:
        """Distinct terms of title and abstract: what unfielded keywords are matched against."""
        return set(self.field_terms("title")) | set(self.field_terms("abstract"))


def _index(tokens: Iterable[tuple[str, int]]) -> tuple[dict[str, list[int]], int]:
    positions: dict[str, list[int]] = {}
    count = 0
    for term, position in tokens:
        positions.setdefault(term, []).append(position)
        count += 1
    return positions, count


def analyze_paper(doc: PaperDoc) -> AnalyzedPaper:
    """Analyse title, abstract and authors with the shared analyser."""
    paper = AnalyzedPaper(doc)
    for name, text in (("title", doc.title), ("abstract", doc.abstract)):
        paper.positions[name], paper.lengths[name] = _index(positions(text))
    author_tokens: list[tuple[str, int]] = []
    base = 0
    for author in doc.authors:
        tokens = positions(strip_latex_accents(author), keep_stop_words=True)
        author_tokens.extend((term, base + position) for term, position in tokens)
        base += (tokens[-1][1] + 1 if tokens else 0) + AUTHOR_GAP
    paper.positions["author"], paper.lengths["author"] = _index(author_tokens)
    return paper


def paper_text(doc: PaperDoc) -> str:
    """The text a sentence embedding reads: title first, as it says the most."""
    return f"{doc.title.strip()}. {doc.abstract.strip()}".strip()
