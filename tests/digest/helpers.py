"""Builders for digest tests: papers, subscriptions (through the real service code), a small ranker."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy.orm import Session

from service.digest.model import DigestItem, Segment
from service.models import Paper, Profile
from service.subscription import SubscriptionRequest, create_subscription

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # a Monday


def add_paper(
    session: Session,
    key: str,
    title: str,
    abstract: str = "",
    *,
    seen: dt.datetime | None = None,
    **fields: Any,
) -> Paper:
    paper = Paper(
        key=key,
        title=title,
        abstract=abstract,
        authors=fields.pop("authors", ["Ada Lovelace", "Alan Turing"]),
        url=fields.pop("url", f"https://arxiv.org/abs/{key.split(':')[-1]}"),
        first_seen_at=seen or NOW - dt.timedelta(hours=3),
        **fields,
    )
    session.add(paper)
    session.flush()
    return paper


def add_subscription(
    session: Session, email: str = "reader@example.org", *interests: str, **options: Any
) -> int:
    request = SubscriptionRequest(email=email, interests=list(interests or ("sparse attention",)), **options)
    return create_subscription(session, request).id


def keyword_ranker(
    session: Session, profile: Profile, papers: list[Paper], *, interests: list[str] | None
) -> list[DigestItem]:
    """Score = share of an interest's comma-separated keywords found in title + abstract."""
    items: list[DigestItem] = []
    chosen = [i for i in profile.interests if interests is None or i.name in interests]
    for paper in papers:
        text = f"{paper.title} {paper.abstract}".lower()
        best: tuple[float, str, list[str]] | None = None
        for interest in chosen:
            terms = [t.strip().lower() for t in interest.keywords.split(",") if t.strip()]
            hits = [t for t in terms if t in text]
            score = len(hits) / len(terms) if terms else 0.0
            if hits and (best is None or score > best[0]):
                best = (score, interest.name, hits)
        if best is None:
            continue
        score, name, hits = best
        items.append(
            DigestItem(
                paper_id=paper.id,
                title=paper.title,
                url=paper.url,
                authors=list(paper.authors),
                author_count=paper.author_count,
                organization=paper.organization,
                published_on=paper.published_on,
                upvotes=paper.upvotes,
                code_url=paper.code_url,
                score=score,
                why="matched " + ", ".join(f"'{h}'" for h in hits),
                snippet=highlight(paper.abstract[:300], hits),
                matched_terms=hits,
                interest=name,
            )
        )
    return sorted(items, key=lambda item: (-item.score, item.paper_id))


def highlight(text: str, terms: list[str]) -> list[Segment]:
    if not terms:
        return [Segment(text)]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    segments: list[Segment] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() > last:
            segments.append(Segment(text[last : match.start()]))
        segments.append(Segment(match.group(0), hit=True))
        last = match.end()
    if last < len(text):
        segments.append(Segment(text[last:]))
    return segments
