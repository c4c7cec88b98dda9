"""Pydantic models of the admin JSON API: what goes in and out, so the OpenAPI schema is complete."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")

MAX_ID = 2**31 - 1  # both SQLite and PostgreSQL INTEGER keys fit here

Cadence = Literal["daily", "weekdays", "weekly"]
SubscriptionStatus = Literal["pending", "active", "unsubscribed"]

_TIMEZONES = frozenset(available_timezones())


def _known_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)")
    return value


# An IANA zone name: letters, digits, '/', '_', '+', '-'. The pattern keeps the schema honest.
TimeZoneName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$"), AfterValidator(_known_timezone)
]


def _hh_mm(value: object) -> object:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else value


# A local wall-clock time without an offset. Not JSON Schema's "time" format, which requires one.
LocalTime = Annotated[
    str,
    BeforeValidator(_hh_mm),
    Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="local wall-clock time, HH:MM",
        examples=["08:00"],
    ),
]


class Error(BaseModel):
    detail: str


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first."""

    items: list[T]
    total: int
    limit: int
    offset: int


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SubscriberOut(_Out):
    id: int
    email: str
    verified: bool
    timezone: str
    hard_bounces: int
    flagged: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class SubscriberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verified: bool | None = None
    flagged: bool | None = None
    timezone: TimeZoneName | None = None
    hard_bounces: int | None = Field(None, ge=0, le=10_000)


class SubscriptionOut(_Out):
    """A subscription; its channel secret (Slack token or webhook URL) is never part of it."""

    id: int
    subscriber_id: int | None
    profile_id: int
    channel: str
    address: str
    interests: list[Any]
    cadence: str
    weekday: int | None
    send_time: LocalTime
    timezone: str
    max_papers: int
    min_score: float
    paused: bool
    status: str
    needs_attention: str | None
    next_digest_at: dt.datetime | None
    last_sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    tldr: bool = False
    trending: bool = False
    best_of_week: bool = False


def _checked_query(value: str) -> str:
    """The query language, refused with the position of the error (service.profile does the check)."""
    from service.profile import ProfileError, validate_query

    text = " ".join(value.split())
    if text:
        try:
            validate_query(text)
        except ProfileError as exc:
            raise ValueError(str(exc)) from exc
    return text


# A query that filters every interest of a subscription; "" removes it.
QueryText = Annotated[
    str,
    Field(max_length=2000, description="query language filtering the interests; empty: no filter"),
    AfterValidator(_checked_query),
]


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool | None = None
    status: SubscriptionStatus | None = None
    cadence: Cadence | None = None
    weekday: int | None = Field(None, ge=0, le=6, description="0 = Monday; used by the weekly cadence")
    send_time: LocalTime | None = None
    timezone: TimeZoneName | None = None
    max_papers: int | None = Field(None, ge=1, le=100)
    min_score: float | None = Field(None, ge=-1000, le=1000)
    clear_needs_attention: bool = Field(False, description="forget a permanent channel error")
    tldr: bool | None = Field(None, description="a one-sentence TL;DR under each title")
    trending: bool | None = Field(None, description="popular matching papers first")
    best_of_week: bool | None = Field(None, description="weekly cadence: the week's most upvoted papers")
    query: QueryText | None = None


class SourceOut(_Out):
    id: int
    name: str
    url: str
    format: str | None
    enabled: bool
    last_polled_at: dt.datetime | None
    last_status: str | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


SourceName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SourceUrl = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")]
SourceFormat = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SourceName
    url: SourceUrl
    format: SourceFormat | None = Field(None, description="a parser name; empty: detect from content")
    enabled: bool = True


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: SourceUrl | None = None
    format: SourceFormat | None = None
    enabled: bool | None = None


class IngestRunOut(_Out):
    id: int
    source: str
    path: str
    sha256: str | None
    format: str | None
    status: str
    new: int
    updated: int
    duplicate: int
    rejected: int
    errors: list[Any]
    started_at: dt.datetime
    finished_at: dt.datetime | None


class DeliveryPaperOut(_Out):
    paper_id: int
    rank: int
    score: float
    reason: dict[str, Any]


class DeliveryOut(_Out):
    id: int
    subscription_id: int
    period: str
    status: str
    attempts: int
    last_error: str | None
    message_id: str | None
    claimed_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeliveryDetail(DeliveryOut):
    papers: list[DeliveryPaperOut]
