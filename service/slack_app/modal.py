"""The subscription modal `/paperboy` opens: a channel's digest set up or changed in a Slack form.

Built with slack_sdk's models (View, InputBlock and its elements), so Slack's own limits are checked
when it is serialised. A submission is read back from `view.state.values`; what is wrong goes back as
`response_action: errors` on the field at fault (a query error with its position, as in the CLI).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
    TimePickerElement,
)
from slack_sdk.models.views import View
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import escape
from service.config import Settings
from service.delivery.schedule import CADENCES, WEEKDAY_NAMES
from service.matching.interests import Interest, InterestError, compile_interest
from service.models import Subscription
from service.subscription import SubscriptionError

CALLBACK = "paperboy-subscription"
MAX_INTEREST = channel_subs.MAX_INTEREST
QUERY_MAX = 1000


@dataclass(frozen=True)
class Where:
    """What the modal is about: a channel of a workspace, and the subscription it edits (if any)."""

    channel_id: str
    team_id: str | None
    enterprise_id: str | None
    subscription_id: int | None = None

    def dump(self) -> str:
        return json.dumps(
            {"c": self.channel_id, "t": self.team_id, "e": self.enterprise_id, "s": self.subscription_id}
        )

    @staticmethod
    def load(text: str) -> Where:
        data = json.loads(text or "{}")
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            raise ValueError("private_metadata is not paperboy's")
        sub = data.get("s")
        return Where(data["c"], data.get("t"), data.get("e"), sub if isinstance(sub, int) else None)


def _option(value: str, label: str) -> Option:
    return Option(value=value, label=label)


def subscription_view(where: Where, sub: Subscription | None) -> View:
    """The modal for a new subscription of the channel, or for changing `sub`."""
    interest, query = _current_interest(sub)
    cadence = sub.cadence if sub else "daily"
    weekday = sub.weekday if sub and sub.weekday is not None else 0
    cadences = [_option(c, c.capitalize() if c != "weekdays" else "Weekdays (Mon–Fri)") for c in CADENCES]
    days = [_option(str(i), name) for i, name in enumerate(WEEKDAY_NAMES)]
    blocks = [
        InputBlock(
            block_id="interests",
            label="Interests",
            hint='Plain words, comma-separated; a phrase in quotes, a weight like "kv cache"^2.',
            element=PlainTextInputElement(
                action_id="value",
                initial_value=interest or None,
                placeholder="sparse attention, kv cache",
                max_length=MAX_INTEREST,
            ),
            optional=True,
        ),
        InputBlock(
            block_id="query",
            label="Query (optional)",
            hint='Only papers matching it, e.g. (title:"kv cache" OR quant*) AND -survey',
            element=PlainTextInputElement(
                action_id="value", initial_value=query or None, max_length=QUERY_MAX
            ),
            optional=True,
        ),
        InputBlock(
            block_id="cadence",
            label="How often",
            element=StaticSelectElement(
                action_id="value",
                options=cadences,
                initial_option=next(o for o in cadences if o.value == cadence),
            ),
        ),
        InputBlock(
            block_id="weekday",
            label="Day (weekly digests)",
            element=StaticSelectElement(action_id="value", options=days, initial_option=days[weekday]),
        ),
        InputBlock(
            block_id="time",
            label="Time",
            element=TimePickerElement(
                action_id="value", initial_time=(sub.send_time if sub else dt.time(8, 0)).strftime("%H:%M")
            ),
        ),
        InputBlock(
            block_id="timezone",
            label="Time zone",
            hint="An IANA name: UTC, Europe/Paris, America/New_York...",
            element=PlainTextInputElement(
                action_id="value", initial_value=sub.timezone if sub else "UTC", max_length=64
            ),
        ),
        InputBlock(
            block_id="max_papers",
            label="At most this many papers",
            element=NumberInputElement(
                action_id="value",
                is_decimal_allowed=False,
                initial_value=str(sub.max_papers if sub else 10),
                min_value="1",
                max_value="100",
            ),
        ),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"Posted to <#{escape(where.channel_id)}>.", verbatim=False)]
        ),
    ]
    return View(
        type="modal",
        callback_id=CALLBACK,
        title="Change the digest" if sub else "New paper digest",
        submit="Save",
        close="Cancel",
        blocks=blocks,
        private_metadata=where.dump(),
    )


def view_payload(where: Where, sub: Subscription | None) -> dict[str, Any]:
    """The modal as the JSON views.open sends. The new-subscription form is the same for every
    channel but its private_metadata, so it is built (and validated by slack_sdk) once."""
    if sub is not None:
        return subscription_view(where, sub).to_dict()  # type: ignore[no-any-return]
    return {**_new_form(), "private_metadata": where.dump()}


@functools.lru_cache(maxsize=1)
def _new_form() -> dict[str, Any]:
    return subscription_view(Where("C0", None, None), None).to_dict()  # type: ignore[no-any-return]


def _current_interest(sub: Subscription | None) -> tuple[str, str]:
    if sub is None or not sub.interests:
        return "", ""
    name = str(sub.interests[0])
    found = next((i for i in sub.profile.interests if i.name == name), None)
    if found is None:
        return name, ""
    return found.keywords or "", found.query or ""


# --- the submission ------------------------------------------------------------------------------


def _value(values: dict[str, Any], block: str) -> Any:
    element = (values.get(block) or {}).get("value") or {}
    if not isinstance(element, dict):
        return None
    kind = element.get("type")
    if kind == "static_select":
        selected = element.get("selected_option") or {}
        return selected.get("value") if isinstance(selected, dict) else None
    if kind == "timepicker":
        return element.get("selected_time")
    return element.get("value")


def read_submission(view: dict[str, Any]) -> tuple[channel_subs.SlackSubscribe, dict[str, str]]:
    """The request a submitted view makes, and the errors by block id (empty when it is valid)."""
    where = Where.load(str(view.get("private_metadata") or ""))
    values = ((view.get("state") or {}).get("values")) or {}
    errors: dict[str, str] = {}
    words = " ".join(str(_value(values, "interests") or "").split())
    query = str(_value(values, "query") or "").strip()
    if not words and not query:
        errors["interests"] = "Say what the channel wants to read about (plain words), or give a query."
    if len(words) > MAX_INTEREST:
        errors["interests"] = f"At most {MAX_INTEREST} characters."
    for part, text in (("keywords", words), ("query", query)):
        if not text or errors:
            continue
        try:
            compile_interest(Interest(name="check", **{part: text}))
        except InterestError as exc:
            cause = exc.cause
            where_at = f" at position {cause.position}" if cause is not None else ""
            message = (cause.message if cause is not None else str(exc).split(": ", 1)[-1]) + where_at
            errors["interests" if part == "keywords" else "query"] = message[:150]
    cadence = str(_value(values, "cadence") or "daily")
    if cadence not in CADENCES:
        errors["cadence"] = f"Choose one of {', '.join(CADENCES)}."
    timezone = str(_value(values, "timezone") or "").strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = f"{timezone[:60]!r} is not a time zone (try Europe/Paris or UTC)."
    raw_max = str(_value(values, "max_papers") or "")
    max_papers = int(raw_max) if raw_max.isdigit() else 0
    if not 1 <= max_papers <= 100:
        errors["max_papers"] = "A number from 1 to 100."
    request = channel_subs.SlackSubscribe(
        channel_id=where.channel_id,
        interest=words,
        query=query or None,
        cadence=cadence,
        weekday=str(_value(values, "weekday") or "0"),
        send_time=str(_value(values, "time") or "08:00"),
        timezone=timezone,
        max_papers=max_papers,
        team_id=where.team_id,
        enterprise_id=where.enterprise_id,
    )
    return request, errors


def save_submission(
    session: Session, settings: Settings, view: dict[str, Any]
) -> tuple[Subscription | None, dict[str, str]]:
    """Create or change the channel's subscription; (None, errors by block id) when it is invalid."""
    request, errors = read_submission(view)
    if errors:
        return None, errors
    where = Where.load(str(view.get("private_metadata") or ""))
    try:
        if where.subscription_id is None:
            sub, _ = channel_subs.subscribe(session, request, settings)
        else:
            sub = channel_subs.update(session, where.subscription_id, request)
    except SubscriptionError as exc:
        field, _, message = str(exc).partition(": ")
        block = {"interest": "interests", "max papers": "max_papers", "schedule": "time"}.get(
            field, "interests"
        )
        return None, {block: (message or str(exc))[:150]}
    return sub, {}
