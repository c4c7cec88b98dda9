"""Followed authors in a digest: a paper by someone the reader follows is chosen whatever its words,
above the papers chosen by words, with the author named in the reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from service.digest.model import DigestItem
from service.matching.authors import AuthorMatcher
from service.matching.interests import CompiledInterest
from service.models import Interest as InterestRow
from service.models import Paper

# Scores are in standard deviations above the pool's average paper: a followed author's paper sits
# above anything words alone bring (and above any min_score a reader would set).
AUTHOR_SCORE = 10.0


def by_words_or_seeds(compiled: CompiledInterest) -> bool:
    """Whether the matching engine has anything to rank the interest by (else: authors only)."""
    return compiled.keywords is not None or compiled.query is not None or bool(compiled.positive_seeds)


def with_followed_authors(
    items: list[DigestItem], rows: Sequence[InterestRow], papers: Sequence[Paper]
) -> list[DigestItem]:
    """`items` (best first) with the papers by followed authors raised to the top, reasons first."""
    followed = [(row.name, AuthorMatcher(row.authors or ())) for row in rows if row.authors]
    if not followed:
        return items
    by_id = {item.paper_id: item for item in items}
    raised: list[DigestItem] = []
    for paper in papers:
        for interest, matcher in followed:
            hits = matcher.matches(paper.authors or ())
            if not hits:
                continue
            names = ", ".join(dict.fromkeys(spelling for spelling, _ in hits))
            why = f"by {names}, whom you follow"
            item = by_id.pop(paper.id, None)
            if item is not None:
                item = dataclasses.replace(
                    item, score=max(item.score, AUTHOR_SCORE), why=f"{why}; {item.why}" if item.why else why
                )
            else:
                item = DigestItem(
                    paper_id=paper.id,
                    title=paper.title,
                    url=paper.url,
                    authors=list(paper.authors or []),
                    author_count=paper.author_count,
                    organization=paper.organization,
                    published_on=paper.published_on,
                    upvotes=paper.upvotes,
                    code_url=paper.code_url,
                    score=AUTHOR_SCORE,
                    why=why,
                    interest=interest,
                )
            raised.append(item)
            break
    rest = [item for item in items if item.paper_id in by_id]
    return sorted(raised, key=lambda i: (-i.score, i.paper_id)) + rest
