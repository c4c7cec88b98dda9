"""Following people: followed authors as an interest of a profile, a preview of the stored papers a
name matches (namesakes show before following), and "more like this" (a paper as a seed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from service.matching.authors import AuthorMatcher, name_key, same_person
from service.models import Interest, Paper, Profile, Subscription

AUTHORS_INTEREST = "followed authors"  # the interest that holds a profile's followed names
MORE_LIKE_THIS = "more like this"  # where seeds go when the profile has no interest of its own
FOLLOW_MAX_AUTHORS = 5  # "follow these authors" on a 300-author paper follows its first five
MAX_NAME = 200
PREVIEW_SCAN = 5_000  # newest stored papers whose author list holds the surname, checked by name


class AuthorError(ValueError):
    """A name that cannot be followed; the message says why."""


def clean_name(name: str) -> str:
    text = " ".join(str(name).split())
    if not text:
        raise AuthorError("an author name is empty")
    if len(text) > MAX_NAME:
        raise AuthorError(f"author name {text[:40]!r}...: longer than {MAX_NAME} characters")
    if not name_key(text):
        raise AuthorError(f"author name {text!r}: has no surname (letters) to match")
    return text


def followed_authors(profile: Profile) -> list[str]:
    return [str(a) for i in profile.interests for a in i.authors or ()]


def _authors_interest(session: Session, profile: Profile) -> Interest:
    for interest in profile.interests:
        if interest.name == AUTHORS_INTEREST:
            return interest
    interest = Interest(name=AUTHORS_INTEREST, keywords="", authors=[])
    profile.interests.append(interest)
    session.flush()
    return interest


def follow(session: Session, profile: Profile, names: list[str]) -> list[str]:
    """Follow `names` (idempotent: a name already followed in any spelling, initials included, is
    skipped);
    returns the names newly followed."""
    cleaned = [clean_name(n) for n in names]
    current = followed_authors(profile)
    added: list[str] = []
    for name in cleaned:
        key = name_key(name)
        if any(same_person(name_key(c), key) for c in current + added):
            continue
        added.append(name)
    if added:
        interest = _authors_interest(session, profile)
        interest.authors = [*(interest.authors or []), *added]
        session.flush()
    return added


def follow_for(session: Session, subscription: Subscription, names: list[str]) -> list[str]:
    """`follow` on the subscription's profile; a subscription limited to some interests gets the
    followed-authors interest added to them, or the followed names would never reach its digest."""
    added = follow(session, subscription.profile, names)
    chosen = [str(n) for n in subscription.interests or ()]
    if chosen and AUTHORS_INTEREST not in chosen and followed_authors(subscription.profile):
        subscription.interests = [*chosen, AUTHORS_INTEREST]
        session.flush()
    return added


def unfollow(session: Session, profile: Profile, name: str) -> list[str]:
    """Stop following every followed spelling of the person `name` names; returns those removed."""
    key = name_key(clean_name(name))
    removed: list[str] = []
    for interest in profile.interests:
        kept = [a for a in interest.authors or () if not same_person(name_key(str(a)), key)]
        removed += [str(a) for a in interest.authors or () if a not in kept]
        if len(kept) != len(interest.authors or ()):
            interest.authors = kept
    empty = [
        i
        for i in profile.interests
        if i.name == AUTHORS_INTEREST and not i.authors and not i.keywords and not i.query and not i.seeds
    ]
    for interest in empty:
        profile.interests.remove(interest)
    session.flush()
    return removed


@dataclass(frozen=True)
class AuthorPreview:
    """Stored papers a name matches, newest first, and how each spelling counts (namesakes)."""

    name: str
    papers: list[tuple[Paper, str]]  # (paper, the author spelling that matched)
    total: int
    spellings: list[tuple[str, int]]


def _fragment(name: str) -> str:
    """The longest plain-letter run of the surname: what a LIKE over the stored (JSON, \\u-escaped)
    author lists can look for before names are compared properly."""
    key = name_key(name)
    runs = [run for s in key.surnames for run in "".join(c if "a" <= c <= "z" else " " for c in s).split()]
    return max(runs, key=len) if runs else ""


def preview(session: Session, name: str, *, limit: int = 20) -> AuthorPreview:
    """Which stored papers `name` would match (checked by name, over the newest PREVIEW_SCAN
    candidates), so a namesake shows before following."""
    name = clean_name(name)
    matcher = AuthorMatcher([name])
    fragment = _fragment(name)
    stmt = select(Paper).order_by(Paper.first_seen_at.desc(), Paper.id.desc()).limit(PREVIEW_SCAN)
    if fragment:
        stmt = stmt.where(func.lower(cast(Paper.authors, Text)).contains(fragment, autoescape=True))
    found: list[tuple[Paper, str]] = []
    spellings: Counter[str] = Counter()
    for paper in session.scalars(stmt):
        hits = matcher.matches(paper.authors or ())
        if hits:
            found.append((paper, hits[0][0]))
            spellings[" ".join(hits[0][0].split())] += 1
    return AuthorPreview(name, found[:limit], len(found), spellings.most_common())


def paper_authors_to_follow(paper: Paper) -> list[str]:
    names = [" ".join(str(a).split()) for a in paper.authors or ()]
    return [n for n in names if n and name_key(n)][:FOLLOW_MAX_AUTHORS]


def add_seed(session: Session, subscription: Subscription, paper_id: int) -> str:
    """ "More like this": the paper becomes a seed of the subscription's first interest that ranks by
    words or seeds (idempotent); returns the interest's name."""
    profile = subscription.profile
    chosen = [str(n) for n in subscription.interests or ()]
    candidates = [
        i
        for i in profile.interests
        if i.name != AUTHORS_INTEREST
        and (not chosen or i.name in chosen)
        and (i.keywords or i.query or i.seeds)
    ]
    if candidates:
        interest = candidates[0]
    else:
        interest = next((i for i in profile.interests if i.name == MORE_LIKE_THIS), None)
        if interest is None:
            interest = Interest(name=MORE_LIKE_THIS, keywords="", seeds=[])
            profile.interests.append(interest)
    if chosen and interest.name not in chosen:  # a subscription limited to some interests sees it too
        subscription.interests = [*chosen, interest.name]
    if paper_id not in (interest.seeds or []):
        interest.seeds = [*(interest.seeds or []), paper_id]
    session.flush()
    return interest.name
