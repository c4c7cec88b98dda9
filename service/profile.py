"""Interest profiles: create, edit, resolve seed papers, record feedback, export and import."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from service.ingest.normalize import normalize_arxiv_id
from service.models import Feedback, Interest, Paper, Profile, Subscriber

log = logging.getLogger(__name__)


class ProfileError(ValueError):
    """A profile that cannot be stored as given; the message names the field."""


class InterestSpec(BaseModel):
    """One interest as people write it in YAML/JSON."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    keywords: str = ""
    query: str | None = None
    exclude: list[str] = Field(default_factory=list)
    seeds: list[str] = Field(default_factory=list)  # paper ids, arXiv ids or exact titles
    authors: list[str] = Field(default_factory=list)  # followed author names
    threshold: float | None = None
    top_k: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("exclude", mode="before")
    @classmethod
    def _split_exclude(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class ProfileSpec(BaseModel):
    """A whole profile: the format of `paperboy profile export` and `import`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    subscriber: str | None = None  # email address
    interests: list[InterestSpec] = Field(default_factory=list)
    relevant: list[str] = Field(default_factory=list)  # feedback, as seed references
    not_relevant: list[str] = Field(default_factory=list)


def validate_query(query: str, part: str = "query") -> None:
    """Raise ProfileError pointing at the position of a malformed query.

    `part` names what was typed ("query", "interest") in the message. Text that leaves no word to
    match (stop words, emoji, punctuation) is refused too: such an interest could never match.
    """
    from service.matching.query import QueryError, parse_query

    try:
        parse_query(query)
    except QueryError as exc:
        raise ProfileError(f"{part} {query!r}: {exc}") from exc


_PAPER_REF = re.compile(r"^(?:paper:|#)?(\d{1,12})$")


def resolve_paper(session: Session, ref: str) -> Paper:
    """A paper named by paperboy id (`17`, `paper:17`), arXiv id (`2401.01234v2`) or exact title."""
    ref = ref.strip()
    match = _PAPER_REF.match(ref)
    if match:
        paper = session.get(Paper, int(match.group(1)))
        if paper is not None:
            return paper
    arxiv = normalize_arxiv_id(ref)
    if arxiv:
        paper = session.scalar(select(Paper).where(Paper.arxiv_id == arxiv))
        if paper is not None:
            return paper
    paper = session.scalar(
        select(Paper).where(func.lower(Paper.title) == ref.lower()).order_by(Paper.id).limit(1)
    )
    if paper is None:
        raise ProfileError(f"seed paper {ref!r}: no stored paper has that id, arXiv id or exact title")
    return paper


def get_profile(session: Session, name_or_id: str | int) -> Profile:
    query = select(Profile).options(selectinload(Profile.interests), selectinload(Profile.feedback))
    if isinstance(name_or_id, int) or str(name_or_id).isdecimal():
        profile = session.scalar(query.where(Profile.id == int(name_or_id)))
        if profile is not None:
            return profile
    profile = session.scalar(query.where(Profile.name == str(name_or_id)))
    if profile is None:
        raise ProfileError(f"no profile named {name_or_id!r}")
    return profile


def _subscriber(session: Session, email: str | None) -> Subscriber | None:
    if not email:
        return None
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email.lower()))
    if subscriber is None:
        raise ProfileError(f"subscriber {email!r} does not exist")
    return subscriber


def apply_spec(session: Session, spec: ProfileSpec) -> Profile:
    """Create the profile, or replace its interests and feedback with the spec's (import is idempotent)."""
    for interest in spec.interests:
        if interest.query:
            validate_query(interest.query)
    names = [i.name for i in spec.interests]
    if len(set(names)) != len(names):
        raise ProfileError(f"profile {spec.name!r}: interest names must be unique, got {names}")
    profile = session.scalar(select(Profile).where(Profile.name == spec.name))
    if profile is None:
        profile = Profile(name=spec.name)
        session.add(profile)
    profile.subscriber = _subscriber(session, spec.subscriber)
    # Delete the old rows first: the unit of work would otherwise insert the new interests before
    # deleting the orphans and trip the (profile, name) unique constraint.
    profile.interests.clear()
    profile.feedback.clear()
    session.flush()
    profile.interests = [
        Interest(
            name=i.name,
            keywords=i.keywords,
            query=i.query or None,
            exclude=", ".join(i.exclude),
            seeds=[resolve_paper(session, ref).id for ref in i.seeds],
            authors=list(i.authors),
            threshold=i.threshold,
            top_k=i.top_k,
        )
        for i in spec.interests
    ]
    session.flush()
    verdicts = {resolve_paper(session, r).id: True for r in spec.relevant}
    verdicts |= {resolve_paper(session, r).id: False for r in spec.not_relevant}
    profile.feedback = [
        Feedback(paper_id=pid, relevant=rel, channel="import") for pid, rel in verdicts.items()
    ]
    session.flush()
    return profile


def to_spec(session: Session, profile: Profile) -> ProfileSpec:
    def ref(paper_id: int) -> str:
        paper = session.get(Paper, paper_id)
        return paper.arxiv_id if paper is not None and paper.arxiv_id else f"paper:{paper_id}"

    return ProfileSpec(
        name=profile.name,
        subscriber=profile.subscriber.email if profile.subscriber else None,
        interests=[
            InterestSpec(
                name=i.name,
                keywords=i.keywords,
                query=i.query,
                exclude=[e.strip() for e in i.exclude.split(",") if e.strip()],
                seeds=[ref(pid) for pid in i.seeds],
                authors=[str(a) for a in i.authors or ()],
                threshold=i.threshold,
                top_k=i.top_k,
            )
            for i in profile.interests
        ],
        relevant=[ref(f.paper_id) for f in profile.feedback if f.relevant],
        not_relevant=[ref(f.paper_id) for f in profile.feedback if not f.relevant],
    )


def dump_spec(spec: ProfileSpec, fmt: str) -> str:
    data = spec.model_dump(exclude_none=True, exclude_defaults=False)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_specs(text: str, where: str) -> list[ProfileSpec]:
    """Profiles from YAML or JSON text (one profile, or a list of them)."""
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ProfileError(f"{where}:{at} not valid YAML/JSON: {getattr(exc, 'problem', exc)}") from exc
    items = data if isinstance(data, list) else [data]
    specs = []
    for n, item in enumerate(items):
        try:
            specs.append(ProfileSpec.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ProfileError(f"{where}: profile #{n + 1}, field {field}: {first['msg']}") from exc
    return specs


def record_feedback(
    session: Session, profile: Profile, paper_id: int, relevant: bool, channel: str
) -> Feedback:
    """Store a verdict (a later one on the same paper replaces the earlier) and retrain the reader's model."""
    feedback = session.scalar(
        select(Feedback).where(Feedback.profile_id == profile.id, Feedback.paper_id == paper_id)
    )
    if feedback is None:
        feedback = Feedback(profile_id=profile.id, paper_id=paper_id, relevant=relevant, channel=channel)
        session.add(feedback)
    else:
        feedback.relevant = relevant
        feedback.channel = channel
    session.flush()
    from service.reader_models import retrain  # the matching stack loads only when a verdict comes

    try:
        with session.begin_nested():  # a failed retraining never costs the verdict itself
            retrain(session, profile)
    except Exception:
        log.warning("profile %s: reader model not retrained", profile.name, exc_info=True)
    return feedback
