"""A digest holds only papers worth reading: the cut-off between an interest's ranking and the digest.

The ranking orders every paper with any evidence (one shared word is enough) and the digest used to
take the first `max_papers` of them, so a quiet day was padded with papers that share one common word
with the interest ("matches Learning"). A paper holding one of the interest's keywords as written
("sparse attention", side by side) is always worth reading; any other must pass two rules, each
interest on its own:

* relative to the best match: a paper scoring less than half of the interest's best paper of the
  batch is not sent (scores are standard deviations above the pool's average, so this holds on any
  pool size; a day with strong matches sends those, not the tail);
* a keyword interest (no seed or liked papers) also needs evidence stronger than one shared word: at
  least half of the words of one of its keywords (both words of "sparse attention", two of the four of
  "reinforcement learning from human feedback"), or closeness in meaning to the keywords (sentence
  embedding cosine of at least `CLOSE_IN_MEANING`). An interest made only of a query is a filter the
  subscriber wrote: what passes it is enough.

No constant was fitted to labels: a half, and the cosine at which MiniLM puts texts on one subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.matching import Match

# A paper at least half as strong as the batch's best match for the interest.
RELATIVE_TO_BEST = 0.5
# Half of a keyword's words: one word of "reinforcement learning from human feedback" is a coincidence.
MIN_KEYWORD_SHARE = 0.5
# MiniLM cosine between a paper and the keywords: unrelated texts sit near 0.0-0.1, papers of one field
# at 0.3; a paper about the keywords' subject itself is well above that.
CLOSE_IN_MEANING = 0.4


def holds_a_keyword(match: Match) -> bool:
    """The paper holds one of the interest's keywords as written (a one-word keyword: that word)."""
    return any(k.whole or (k.total == 1 and k.words) for k in match.explanation.keywords)


def worth_reading(match: Match) -> bool:
    """Whether a keyword interest's match has enough evidence of its own (see the module's rule)."""
    explanation = match.explanation
    if any(k.whole or k.share >= MIN_KEYWORD_SHARE for k in explanation.keywords):
        return True
    return explanation.signals.get("keywords_semantic", 0.0) >= CLOSE_IN_MEANING


def cut_off(matches: Sequence[Match], *, seeded: bool) -> list[Match]:
    """The matches a digest may send, best first (`matches` come best first from `rank`);
    `seeded`: the interest has seed or liked papers."""
    if not matches:
        return []
    best = max(m.score for m in matches)
    floor = RELATIVE_TO_BEST * best if best > 0 else float("-inf")
    kept = [m for m in matches if m.score >= floor or holds_a_keyword(m)]
    if seeded:
        return kept
    # No keyword evidence at all: a query-only interest, whose query already decided.
    return [m for m in kept if not m.explanation.keywords or worth_reading(m)]
