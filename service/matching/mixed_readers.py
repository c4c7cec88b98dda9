"""Readers of several topics, made from a labelled set, to measure diversity.

The set's profiles each follow one topic. A mixed reader follows three of them at once (three
keyword interests; profiles taken in file order, each with relevant papers disjoint from the
others'), and a paper is relevant to it when it is relevant to any of them. Its digest is
ranked as the service ranks one (each interest scores the pool, a paper goes to the interest
that scored it highest) and ordered either by score alone or with the places shared
(diversity.allocate). Measured: nDCG@10 against all three topics, and interest coverage in
the top 10 (the share of the three topics with at least one relevant paper there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .diversity import allocate, interest_coverage
from .interests import Interest, compile_interest
from .ranking import MatchContext, score_pool

if TYPE_CHECKING:
    from .evaluation import EvalProfile

__all__ = ["MixedResult", "mixed_readers", "score_mixed_readers"]

TOPICS = 3
TOP = 10


@dataclass(slots=True)
class MixedResult:
    order: str  # "by score" or "shared places"
    readers: int
    ndcg_at_10: float
    coverage_at_10: float


def mixed_readers(profiles: Sequence[EvalProfile], topics: int = TOPICS) -> list[list[EvalProfile]]:
    """Groups of ``topics`` profiles with keywords and pairwise disjoint relevant papers, in file order."""
    left = [p for p in profiles if p.keywords.strip() and p.relevant]
    groups: list[list[EvalProfile]] = []
    while left:
        group = [left.pop(0)]
        for candidate in list(left):
            if len(group) == topics:
                break
            if all(not (candidate.relevant & member.relevant) for member in group):
                group.append(candidate)
                left.remove(candidate)
        if len(group) == topics:
            groups.append(group)
    return groups


def score_mixed_readers(profiles: Sequence[EvalProfile], context: MatchContext) -> list[MixedResult]:
    """nDCG@10 and coverage@10 of mixed readers, ordered by score and with shared places."""
    from .evaluation import ndcg_at  # evaluation imports this module for its report

    groups = mixed_readers(profiles)
    ids = [doc.id for doc in context.docs[: context.pool_size]]
    totals = {"by score": np.zeros(2), "shared places": np.zeros(2)}
    for group in groups:
        best: dict[int, tuple[float, str]] = {}
        for member in group:
            interest = Interest(member.id, keywords=member.keywords)
            ranking = score_pool(compile_interest(interest), context)
            for row in np.flatnonzero(ranking.allowed):
                score = float(ranking.scores[row])
                if row not in best or score > best[row][0]:
                    best[int(row)] = (score, member.id)
        items = list(best.items())
        orders = {
            "by score": sorted(items, key=lambda item: -item[1][0]),
            "shared places": allocate(
                items, lambda item: item[1][1], lambda item: item[1][0], semantic=context.semantic
            ),
        }
        relevant = frozenset().union(*(m.relevant for m in group))
        for name, ordered in orders.items():
            top = [ids[row] for row, _ in ordered[:TOP]]
            served = [{m.id for m in group if pid in m.relevant} for pid in top]
            wanted = [m.id for m in group]
            totals[name] += (ndcg_at(top, relevant), interest_coverage(served, wanted))
    if not groups:
        return []
    return [
        MixedResult(name, len(groups), *map(float, total / len(groups))) for name, total in totals.items()
    ]
