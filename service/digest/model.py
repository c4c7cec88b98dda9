"""What a digest holds, independent of the channel that renders it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    """A piece of a snippet; `hit` marks a matched term (renderers escape and highlight)."""

    text: str
    hit: bool = False


@dataclass(frozen=True)
class DigestItem:
    """One paper in a digest, with why it was chosen."""

    paper_id: int
    title: str
    url: str | None
    authors: list[str]
    author_count: int | None
    organization: str | None
    published_on: dt.date | None
    upvotes: int | None
    code_url: str | None
    score: float
    why: str  # one human sentence: "matched 'sparse attention', 'kv cache'; like seed paper X"
    snippet: list[Segment] = field(default_factory=list)
    matched_terms: list[str] = field(default_factory=list)
    interest: str | None = None  # the interest that matched best
    tldr: str | None = None  # one extractive sentence (service/digest/tldr.py), when the subscription asks
    pdf_url: str | None = None  # the arXiv PDF, when the arXiv id is known


@dataclass(frozen=True)
class DigestLinks:
    """Signed links a digest carries (built by service.links)."""

    manage: str
    unsubscribe: str
    unsubscribe_post: str  # RFC 8058 one-click target
    feedback: dict[int, tuple[str, str]] = field(default_factory=dict)  # paper id -> (relevant, not)
    view: str = ""  # the digest's own web page ("View in browser")
    archive: str = ""  # the subscription's archive of past digests
    follow: dict[int, tuple[str, str]] = field(default_factory=dict)  # paper id -> (authors, more like)


@dataclass(frozen=True)
class Digest:
    """A composed digest for one subscription and one period."""

    subscription_id: int
    period: str
    topic: str  # e.g. "sparse attention" (for the subject line)
    items: list[DigestItem]
    links: DigestLinks
    generated_at: dt.datetime
    # What the selection saw, for "why no email today" (service/why.py): papers new for the
    # subscription, and the best matching score among them (before min_score and max_papers).
    candidates: int | None = None
    best_score: float | None = None
