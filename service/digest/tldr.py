"""A one-sentence TL;DR per paper, extractive and offline: the abstract sentence that best states the
contribution ("We propose ...", "This paper introduces ..."), chosen by cue phrases, the words it
shares with the title, and its place in the abstract. No model, no API: it runs in microseconds."""

from __future__ import annotations

import re

MAX_CHARS = 320
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_WORD = re.compile(r"[a-z][a-z0-9-]+")
# Phrases that announce the paper's own contribution or result, with their weight.
_VERBS = r"(propose|introduce|present|develop|design|describe|release|build)s?"
_CUES = (
    (re.compile(r"\b(we|this (paper|work|study|article)|our (work|paper))\s+" + _VERBS + r"\b"), 3.0),
    (re.compile(r"\b(in this (paper|work|study)|here),?\s+we\b"), 2.5),
    (re.compile(r"\bwe (show|find|demonstrate|prove|establish|report)\b"), 2.0),
    (re.compile(r"\b(propose|introduce|present)s? (a|an|the)\b"), 1.5),
    (re.compile(r"\b(outperform|achiev|improv|surpass|reduc)\w*\b"), 1.0),
    (re.compile(r"\b(our|the proposed) (method|model|approach|framework|system)\b"), 1.0),
)
# Sentences that set the scene rather than say what the paper does.
_BACKGROUND = re.compile(
    r"^(recent|recently|however|despite|although|while|in recent years|large language models have)\b"
)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "via",
        "using",
        "toward",
    ]
)


def sentences(abstract: str) -> list[str]:
    text = " ".join(abstract.split())
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _score(sentence: str, position: int, count: int, title_words: set[str]) -> float:
    lower = sentence.lower()
    score = sum(weight for cue, weight in _CUES if cue.search(lower))
    words = set(_WORD.findall(lower)) - _STOP
    if title_words:
        score += 1.5 * len(words & title_words) / len(title_words)
    if _BACKGROUND.match(lower):
        score -= 1.0
    if len(sentence) < 40 or len(sentence) > 400:
        score -= 1.0
    # Contributions come early, after a sentence or two of context: a mild preference, not a rule.
    score -= 0.15 * abs(position - min(1, count - 1))
    return score


def tldr(title: str, abstract: str) -> str | None:
    """The abstract's contribution sentence (clipped to MAX_CHARS), or None without an abstract."""
    found = sentences(abstract or "")
    if not found:
        return None
    title_words = set(_WORD.findall((title or "").lower())) - _STOP
    best = max(range(len(found)), key=lambda i: (_score(found[i], i, len(found), title_words), -i))
    sentence = found[best]
    if len(sentence) > MAX_CHARS:
        sentence = sentence[: MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return sentence
