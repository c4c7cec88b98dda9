"""The public URLs paperboy puts in emails and Slack messages; the web app serves these paths."""

from __future__ import annotations

from service.config import Settings, get_settings
from service.tokens import make_token

# Paths the web app routes (service/web): keep both sides in step through these constants.
CONFIRM_PATH = "/confirm/{token}"
MANAGE_PATH = "/manage/{token}"
UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
FEEDBACK_PATH = "/feedback/{token}"


def _url(path: str, token: str, settings: Settings) -> str:
    return settings.base_url.rstrip("/") + path.format(token=token)


def confirm_url(subscriber_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return _url(CONFIRM_PATH, make_token("confirm", subscriber_id=subscriber_id, settings=s), s)


def manage_url(subscriber_id: int, subscription_id: int | None, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    token = make_token("manage", subscriber_id=subscriber_id, subscription_id=subscription_id, settings=s)
    return _url(MANAGE_PATH, token, s)


def unsubscribe_url(subscriber_id: int | None, subscription_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    token = make_token(
        "unsubscribe", subscriber_id=subscriber_id, subscription_id=subscription_id, settings=s
    )
    return _url(UNSUBSCRIBE_PATH, token, s)


def feedback_url(
    subscription_id: int, paper_id: int, relevant: bool, settings: Settings | None = None
) -> str:
    s = settings or get_settings()
    token = make_token(
        "feedback", subscription_id=subscription_id, settings=s, paper=paper_id, relevant=relevant
    )
    return _url(FEEDBACK_PATH, token, s)


# --- reader links: a digest's own page, the archive, one-click follow actions --------------------

DIGEST_PATH = "/digest/{token}"
ARCHIVE_PATH = "/archive/{token}"
FOLLOW_PATH = "/follow/{token}"
FEED_PATH = "/feed/{token}.{fmt}"  # fmt: atom | rss
FOLLOW_ACTIONS = ("authors", "seed")  # follow the paper's authors / more like this paper


def digest_url(
    subscriber_id: int | None, subscription_id: int, period: str, settings: Settings | None = None
) -> str:
    """The permanent page of the digest (subscription, period): deliveries are unique per pair."""
    s = settings or get_settings()
    token = make_token(
        "digest", subscriber_id=subscriber_id, subscription_id=subscription_id, settings=s, period=period
    )
    return _url(DIGEST_PATH, token, s)


def archive_url(subscriber_id: int | None, subscription_id: int, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    token = make_token("archive", subscriber_id=subscriber_id, subscription_id=subscription_id, settings=s)
    return _url(ARCHIVE_PATH, token, s)


def follow_url(
    subscriber_id: int | None,
    subscription_id: int,
    paper_id: int,
    action: str,
    settings: Settings | None = None,
) -> str:
    """A one-click link: follow the paper's authors ("authors") or add it as a seed ("seed")."""
    if action not in FOLLOW_ACTIONS:
        raise ValueError(f"unknown follow action {action!r}")
    s = settings or get_settings()
    token = make_token(
        "follow",
        subscriber_id=subscriber_id,
        subscription_id=subscription_id,
        settings=s,
        paper=paper_id,
        action=action,
    )
    return _url(FOLLOW_PATH, token, s)


def feed_url(
    subscriber_id: int | None, subscription_id: int, fmt: str = "atom", settings: Settings | None = None
) -> str:
    """The subscription's private feed (Atom or RSS 2.0); a reset of the feed link revokes older ones."""
    s = settings or get_settings()
    token = make_token("feed", subscriber_id=subscriber_id, subscription_id=subscription_id, settings=s)
    return s.base_url.rstrip("/") + FEED_PATH.format(token=token, fmt=fmt)
