"""The subscribe and preferences forms: read what was typed, say clearly what is wrong with it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from service.delivery.schedule import CADENCES, WEEKDAY_NAMES
from service.matching.query import QueryError
from service.models import Interest, Paper, Subscription
from service.profile import ProfileError, resolve_paper, validate_query
from service.subscription import SubscriptionError, normalise_email

TIMEZONES = sorted(available_timezones() - {"localtime", "Factory"})
_TIMEZONE_SET = frozenset(TIMEZONES)
MAX_TEXT = 2000
MAX_INTERESTS = 20
MAX_SEEDS = 50

Errors = dict[str, str]


@dataclass
class ScheduleInput:
    cadence: str = "daily"
    weekday: int = 0
    send_time: str = "08:00"
    timezone: str = "UTC"

    def time(self) -> dt.time:
        return dt.time.fromisoformat(self.send_time)


@dataclass
class SubscribeInput(ScheduleInput):
    email: str = ""
    keywords: str = ""
    query: str = ""


@dataclass
class InterestInput:
    """One interest row of the preferences form, as typed."""

    id: int | None = None
    name: str = ""
    keywords: str = ""
    query: str = ""
    exclude: str = ""
    seed_ids: list[int] = field(default_factory=list)
    add_seeds: str = ""
    remove: bool = False

    def is_blank(self) -> bool:
        return self.id is None and not (self.name or self.keywords or self.query or self.add_seeds)


@dataclass
class ManageInput(ScheduleInput):
    interests: list[InterestInput] = field(default_factory=list)
    max_papers: int = 10
    paused: bool = False
    resubscribe: bool = False


def _text(form: FormData, name: str, errors: Errors, *, limit: int = MAX_TEXT, label: str = "") -> str:
    value = form.get(name, "")
    value = value if isinstance(value, str) else ""  # a file upload where text belongs: ignore it
    value = value.replace("\r\n", "\n").strip()
    if len(value) > limit:
        errors[name] = f"{label or 'This field'} is too long ({len(value)} characters; at most {limit})."
    elif any(ord(c) < 32 and c not in "\n\t" for c in value):
        errors[name] = f"{label or 'This field'} contains a control character that is not allowed."
    return value


def _schedule(form: FormData, target: ScheduleInput, errors: Errors) -> None:
    target.cadence = _text(form, "cadence", errors, limit=20) or "daily"
    if target.cadence not in CADENCES:
        errors["cadence"] = "Choose every day, Monday to Friday, or once a week."
        target.cadence = "daily"
    weekday = _text(form, "weekday", errors, limit=2) or "0"
    target.weekday = int(weekday) if weekday.isdecimal() and int(weekday) < 7 else 0
    target.send_time = _text(form, "send_time", errors, limit=8) or "08:00"
    try:
        parsed = dt.time.fromisoformat(target.send_time)
        target.send_time = parsed.strftime("%H:%M")
    except ValueError:
        errors["send_time"] = "Give the time as hours and minutes, like 08:30."
        target.send_time = "08:00"
    target.timezone = _text(form, "timezone", errors, limit=64) or "UTC"
    if target.timezone not in _TIMEZONE_SET:
        errors["timezone"] = "Choose a time zone from the list."
        target.timezone = "UTC"


def _query(value: str, name: str, errors: Errors, label: str = "The query") -> None:
    """Checks text in the query language; the message points at the problem."""
    if not value or name in errors:
        return
    try:
        validate_query(value)
    except ProfileError as exc:
        cause = exc.__cause__
        if isinstance(cause, QueryError):
            at = cause.position
            shown = f"{value[max(0, at - 30) : at]}▸{value[at : at + 30]}"
            errors[name] = f"{label}: {cause.message} at character {at + 1}: “{shown}”"
        else:
            errors[name] = str(exc)


# Commas and line breaks separate topics, except inside "quoted phrases".
_TOPIC = re.compile(r'(?:"[^"]*"|[^,\n"])+|"[^"]*$')


def split_topics(text: str) -> list[str]:
    """`sparse attention, "kv cache"` -> ["sparse attention", '"kv cache"']: one interest each."""
    return [" ".join(part.split()) for part in _TOPIC.findall(text) if part.strip()]


def parse_subscribe(form: FormData) -> tuple[SubscribeInput, Errors]:
    """The subscribe form as typed, and the problems with it by field name."""
    errors: Errors = {}
    data = SubscribeInput()
    raw_email = _text(form, "email", errors, limit=320, label="The address")
    data.email = raw_email
    if not raw_email:
        errors["email"] = "Enter your email address."
    elif "email" not in errors:
        try:
            data.email = normalise_email(raw_email)
        except SubscriptionError as exc:
            errors["email"] = str(exc).removeprefix("email: ")
    data.keywords = _text(form, "keywords", errors, label="Interests")
    data.query = _text(form, "query", errors, label="The query")
    _query(data.query, "query", errors)
    for topic in split_topics(data.keywords):
        _query(topic, "keywords", errors, label="Interests")
    if not data.keywords and not data.query and "keywords" not in errors:
        errors["keywords"] = "Tell us at least one topic (or write a query)."
    _schedule(form, data, errors)
    return data, errors


def parse_manage(
    session: Session,
    form: FormData,
    current: list[Interest],
    reserved: set[str] | frozenset[str] = frozenset(),
) -> tuple[ManageInput, Errors]:
    """The preferences form as typed, seed papers resolved, and the problems with it.

    `current` are the interests the form showed (only they can be edited); `reserved` the names of the
    profile's other interests, which a new or renamed one cannot take."""
    errors: Errors = {}
    data = ManageInput()
    _schedule(form, data, errors)
    max_papers = _text(form, "max_papers", errors, limit=3) or "10"
    data.max_papers = int(max_papers) if max_papers.isdecimal() else 0
    if not 1 <= data.max_papers <= 50:
        errors["max_papers"] = "Choose between 1 and 50 papers."
        data.max_papers = 10
    data.paused = form.get("paused") == "1"
    data.resubscribe = form.get("resubscribe") == "1"

    own = {i.id: i for i in current}
    count = _text(form, "interest_count", errors, limit=3)
    rows = min(int(count) if count.isdecimal() else 0, MAX_INTERESTS + 1)
    for n in range(rows):
        row = _interest_row(session, form, f"interest-{n}-", own, errors)
        if row is not None:
            data.interests.append(row)
    kept = [i for i in data.interests if not i.remove]
    if not kept:
        errors["interests"] = "Keep at least one interest (or unsubscribe instead)."
    elif len(kept) > MAX_INTERESTS:
        errors["interests"] = f"At most {MAX_INTERESTS} interests."
    names = [i.name.lower() for i in kept]
    if len(set(names)) != len(names):
        errors["interests"] = "Give each interest a different name."
    for n, row in enumerate(data.interests):
        if not row.remove and row.name in reserved:
            errors[f"interest-{n}-name"] = "Another subscription of yours has an interest with this name."
    return data, errors


def _interest_row(
    session: Session, form: FormData, p: str, own: dict[int, Interest], errors: Errors
) -> InterestInput | None:
    row = InterestInput()
    raw_id = _text(form, p + "id", errors, limit=12)
    if raw_id:
        # Only this profile's interests can be edited: any other id is ignored, never looked up.
        if not raw_id.isdecimal() or int(raw_id) not in own:
            return None
        row.id = int(raw_id)
    row.name = _text(form, p + "name", errors, limit=200, label="The name")
    row.keywords = _text(form, p + "keywords", errors, label="Keywords")
    row.query = _text(form, p + "query", errors, label="The query")
    row.exclude = _text(form, p + "exclude", errors, label="Exclusions")
    row.add_seeds = _text(form, p + "add_seeds", errors, label="Seed papers")
    row.remove = form.get(p + "remove") == "1"
    if row.is_blank():
        return None
    existing = set(own[row.id].seeds) if row.id is not None else set()
    for value in form.getlist(p + "seed"):
        # A kept seed must be one the interest already had; new ones come through add_seeds.
        if isinstance(value, str) and value.isdecimal() and int(value) in existing:
            row.seed_ids.append(int(value))
    if row.remove:
        return row
    if not row.name:
        row.name = _unused_name(own) if row.id is None else own[row.id].name
    _query(row.query, p + "query", errors)
    _query(row.keywords, p + "keywords", errors, label="Keywords")
    for number, line in enumerate(row.add_seeds.splitlines(), 1):
        if line.strip():
            try:
                paper = resolve_paper(session, line.strip())
            except ProfileError as exc:
                errors[p + "add_seeds"] = f"Line {number}: {exc}"
                break
            if paper.id not in row.seed_ids:
                row.seed_ids.append(paper.id)
    if len(row.seed_ids) > MAX_SEEDS:
        errors[p + "add_seeds"] = f"At most {MAX_SEEDS} seed papers an interest."
    if not (row.keywords or row.query or row.seed_ids) and p + "add_seeds" not in errors:
        errors[p + "keywords"] = "Give keywords, a query or a seed paper (or remove this interest)."
    return row


def _unused_name(own: dict[int, Interest]) -> str:
    """A default name for a new interest that no interest of the form has (the fuzzer found that
    "interest 2" could already be taken, and the unique name made the save a 500)."""
    taken = {i.name.lower() for i in own.values()}
    n = len(own) + 1
    while f"interest {n}" in taken:
        n += 1
    return f"interest {n}"


def interest_rows(session: Session, interests: list[InterestInput] | list[Interest]) -> list[dict[str, Any]]:
    """Template rows for the interests (stored or as typed), plus one blank row to add an interest."""
    rows: list[dict[str, Any]] = []
    for interest in interests:
        seeds = interest.seed_ids if isinstance(interest, InterestInput) else list(interest.seeds)
        rows.append(
            {
                "id": interest.id,
                "name": interest.name,
                "keywords": interest.keywords,
                "query": interest.query or "",
                "exclude": interest.exclude,
                "seeds": [{"id": pid, "label": _seed_label(session, pid)} for pid in seeds],
                "add_seeds": interest.add_seeds if isinstance(interest, InterestInput) else "",
                "remove": isinstance(interest, InterestInput) and interest.remove,
            }
        )
    if len(rows) < MAX_INTERESTS:
        rows.append(
            {"id": None, "name": "", "keywords": "", "query": "", "exclude": "", "seeds": [], "add_seeds": ""}
        )
    return rows


def _seed_label(session: Session, paper_id: int) -> str:
    paper = session.get(Paper, paper_id)
    if paper is None:
        return f"paper {paper_id} (no longer stored)"
    return f"{paper.title} ({paper.arxiv_id})" if paper.arxiv_id else paper.title


def schedule_values(subscription: Subscription) -> dict[str, Any]:
    return {
        "cadence": subscription.cadence,
        "weekday": subscription.weekday or 0,
        "send_time": subscription.send_time.strftime("%H:%M"),
        "timezone": subscription.timezone,
        "max_papers": subscription.max_papers,
        "paused": subscription.paused,
    }


WEEKDAYS = list(WEEKDAY_NAMES)
