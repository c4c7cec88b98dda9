"""Apply the preferences form to a subscription and its profile, and preview the digest it would get."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.authors import AUTHORS_INTEREST
from service.delivery.schedule import Schedule, next_send_at
from service.digest.compose import choose_items
from service.digest.model import DigestItem
from service.models import Interest, Paper, Subscription
from service.web.forms import InterestInput, ManageInput

PREVIEW_DAYS = 7
# The preview ranks at most this many of the newest papers, so a keystroke never ranks a huge backlog.
PREVIEW_MAX_PAPERS = 5000


def reschedule(subscription: Subscription, now: dt.datetime) -> None:
    """Sets when the next digest is due from the subscription's (possibly new) timing."""
    if subscription.status == "active":
        subscription.next_digest_at = next_send_at(Schedule.of(subscription), now)
    else:
        subscription.next_digest_at = None


def shown_interests(subscription: Subscription) -> list[Interest]:
    """The interests a subscription uses: the ones its names list, or all of its profile's."""
    interests = list(subscription.profile.interests)
    if subscription.interests:
        wanted = set(subscription.interests)
        interests = [i for i in interests if i.name in wanted]
    # Followed authors have their own page (/manage/{token}/authors), not a keywords form.
    return [i for i in interests if i.name != AUTHORS_INTEREST]


def apply_preferences(
    session: Session, subscription: Subscription, data: ManageInput, now: dt.datetime
) -> None:
    """Writes the form into the subscription and its profile (flushed, not committed).

    Interests are updated in place, so their ids (and the feedback and history tied to the profile)
    survive an edit; the subscription's list of interest names follows renames and removals."""
    profile = subscription.profile
    by_id = {interest.id: interest for interest in profile.interests}
    renamed: dict[str, str | None] = {}
    updates: list[tuple[Interest | None, InterestInput]] = []
    for row in data.interests:
        interest = by_id.get(row.id) if row.id is not None else None
        if row.remove:
            if interest is not None:
                renamed[interest.name] = None
            continue
        if interest is not None and interest.name != row.name:
            renamed[interest.name] = row.name
        updates.append((interest, row))
    if renamed:
        # Names move in two steps, so that swapping two names, or reusing the name of a removed
        # interest, never trips the unique (profile, name) constraint half-way through the flush.
        for row in data.interests:
            if row.id in by_id:
                by_id[row.id].name = f"~{row.id}~"
        session.flush()
    kept: list[Interest] = []
    for existing, row in updates:
        interest = existing if existing is not None else Interest(name=row.name)
        interest.name = row.name
        interest.keywords = row.keywords
        interest.query = row.query or None
        interest.exclude = row.exclude
        interest.seeds = list(row.seed_ids)
        kept.append(interest)
    # Interests the form did not show (added elsewhere meanwhile) stay as they are.
    shown = {row.id for row in data.interests if row.id is not None}
    kept += [i for i in profile.interests if i.id not in shown]
    profile.interests = kept  # delete-orphan removes the others
    kept = kept[: len(updates)]  # the interests the form showed or added
    if subscription.interests:
        # The form showed exactly this subscription's interests: what it kept or added is the new list.
        followed = [n for n in subscription.interests if n == AUTHORS_INTEREST]  # not on the form
        subscription.interests = [i.name for i in kept] + followed
    for other in session.scalars(
        select(Subscription).where(Subscription.profile_id == profile.id, Subscription.id != subscription.id)
    ):
        if other.interests and renamed:  # other subscriptions of the profile follow renames and removals
            other.interests = [n for n in (renamed.get(n, n) for n in other.interests) if n]

    subscription.cadence = data.cadence
    subscription.weekday = data.weekday if data.cadence == "weekly" else None
    subscription.send_time = data.time()
    subscription.timezone = data.timezone
    subscription.max_papers = data.max_papers
    subscription.paused = data.paused
    if data.resubscribe and subscription.status == "unsubscribed":
        # Whoever holds an old link may ask; only the inbox's owner can say yes (a new confirm link).
        subscription.status = "active" if subscription.subscriber is None else "pending"
    reschedule(subscription, now)
    session.flush()


@dataclass
class Preview:
    """The digest a subscription would have received from the last week's papers."""

    available: bool = True
    items: list[DigestItem] = field(default_factory=list)
    paper_count: int = 0
    error: str | None = None


def recent_papers(session: Session, now: dt.datetime) -> list[Paper]:
    since = now - dt.timedelta(days=PREVIEW_DAYS)
    stmt = (
        select(Paper)
        .where(Paper.first_seen_at > since, Paper.first_seen_at <= now)
        .order_by(Paper.first_seen_at.desc(), Paper.id.desc())
        .limit(PREVIEW_MAX_PAPERS)
    )
    return list(session.scalars(stmt))


def preview_digest(session: Session, subscription: Subscription, now: dt.datetime) -> Preview:
    """Ranks the last 7 days' papers for the subscription as it stands in this session."""
    papers = recent_papers(session, now)
    try:
        # The same choice a digest makes (ranker, min_score, max_papers), on the week's papers.
        items = choose_items(session, subscription, papers)
    except ImportError:  # service.digest.rank is not there yet
        return Preview(available=False, paper_count=len(papers))
    return Preview(items=items, paper_count=len(papers))
