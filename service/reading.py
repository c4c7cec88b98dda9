"""How a subscription's digest reads: TL;DR lines, trending order, best of the week (weekly only)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.models import Subscription

OPTIONS = ("tldr", "trending", "best_of_week")


class ReadingError(ValueError):
    """Options that do not fit the subscription; the message names the option."""


def set_reading_options(
    session: Session, subscription: Subscription, **options: bool | None
) -> dict[str, bool]:
    """Set the options given (None: unchanged); returns them all as they now stand."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ReadingError(f"unknown options {sorted(unknown)} (known: {', '.join(OPTIONS)})")
    wanted = {k: v for k, v in options.items() if v is not None}
    if wanted.get("best_of_week") and subscription.cadence != "weekly":
        raise ReadingError(
            f"best_of_week: needs the weekly cadence (this subscription is {subscription.cadence})"
        )
    for key, value in wanted.items():
        setattr(subscription, key, value)
    session.flush()
    return {key: bool(getattr(subscription, key)) for key in OPTIONS}
