"""Slots shared across a reader's interests, and how well a digest covers them.

Ranked by score alone, a digest for a reader of three topics can be ten papers of the one
topic whose scores run highest. :func:`allocate` orders the matches so that every interest
with a match has its best paper among the first places (best interest first); the rest go
by score, less an optional penalty for each paper their interest already has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import TypeVar

__all__ = ["SHARE_PENALTY", "allocate", "interest_coverage"]

T = TypeVar("T")

# Score units are the pool's standard deviations. On three-topic readers made from the dev set
# (mixed_readers.py), penalties 0, 0.1, 0.25, 0.5 and 1 were tried on the even-numbered readers:
# 0 (each interest's best first, then by score) gave the best nDCG@10 and coverage, and held on the
# odd-numbered ones; any penalty traded relevance away for no more coverage.
SHARE_PENALTY = 0.0


def allocate(
    items: Sequence[T],
    interest: Callable[[T], Hashable],
    score: Callable[[T], float],
    *,
    penalty: float = SHARE_PENALTY,
) -> list[T]:
    """The items reordered: each interest's best first (by score), then by penalised score."""
    queues: dict[Hashable, deque[T]] = {}
    for item in sorted(items, key=lambda item: -score(item)):  # stable: equal scores keep their order
        queues.setdefault(interest(item), deque()).append(item)
    chosen = [queue.popleft() for queue in queues.values()]
    taken = dict.fromkeys(queues, 1)
    # Within an interest the penalty is the same for all its papers: only the queue heads compete.
    while True:
        heads = [(score(queue[0]) - penalty * taken[name], name) for name, queue in queues.items() if queue]
        if not heads:
            return chosen
        _, name = max(heads, key=lambda head: head[0])  # the first of equals: the stronger interest
        chosen.append(queues[name].popleft())
        taken[name] += 1


def interest_coverage(shown: Sequence[Collection[Hashable]], wanted: Collection[Hashable]) -> float:
    """Share of the ``wanted`` interests that at least one shown paper serves.

    ``shown`` holds, per paper in the digest's top places, the interests it serves (for the
    evaluation, the interests whose labels call it relevant).
    """
    if not wanted:
        return 0.0
    served = {name for interests in shown for name in interests}
    return len(served & set(wanted)) / len(wanted)
