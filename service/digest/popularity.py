"""Popular papers: "trending" (a popularity boost in the order) and "best of the week" (the week's most
upvoted papers first). Both only reorder papers the profile already matched: an off-topic paper,
however popular, never gets in, and min_score is still applied to the matching score alone."""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.digest.model import DigestItem

# How much the most upvoted paper of the pool gains, in the ranker's unit (standard deviations).
TRENDING_BOOST = 1.0


def trending_order(items: Sequence[DigestItem]) -> list[DigestItem]:
    """Matched papers by score plus a boost growing with log(upvotes), relative to the pool's top."""
    top = max((item.upvotes or 0 for item in items), default=0)
    if top <= 0:
        return list(items)
    scale = math.log1p(top)

    def key(item: DigestItem) -> tuple[float, int]:
        return (-(item.score + TRENDING_BOOST * math.log1p(max(item.upvotes or 0, 0)) / scale), item.paper_id)

    return sorted(items, key=key)


def best_of_week_order(items: Sequence[DigestItem]) -> list[DigestItem]:
    """Matched papers by upvotes (most first), the matching score breaking ties."""
    return sorted(items, key=lambda item: (-(item.upvotes or 0), -item.score, item.paper_id))
