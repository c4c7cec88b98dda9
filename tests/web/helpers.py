"""Helpers for the web tests: forms with their CSRF token, subscribers, papers, the outbox."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import Paper, Subscription, utcnow
from service.subscription import SubscriptionRequest, create_subscription

SECRET = "web-tests-secret-key"
ADMIN_TOKEN = "web-tests-admin-token"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def subscribe_form(client: TestClient, **fields: str) -> dict[str, str]:
    """The subscribe form's fields (with this client's CSRF token), overridden by `fields`."""
    page = client.get("/")
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_of(page.text),
        "email": "ada@example.org",
        "keywords": "sparse attention, kv cache",
        "query": "",
        "cadence": "daily",
        "weekday": "0",
        "send_time": "08:00",
        "timezone": "Europe/Paris",
    }
    form.update(fields)
    return form


def make_subscription(
    engine: Engine, email_address: str, *, interests: tuple[str, ...] = ("sparse attention",), **kwargs: Any
) -> Subscription:
    """An active, verified email subscription made the way the CLI makes one."""
    with Session(engine, expire_on_commit=False) as session:
        subscription = create_subscription(
            session, SubscriptionRequest(email=email_address, interests=list(interests), **kwargs)
        )
        session.commit()
        return subscription


def add_paper(engine: Engine, title: str, abstract: str = "", **kwargs: Any) -> int:
    with Session(engine) as session:
        key = kwargs.pop("key", f"title:{title.lower()}")
        paper = Paper(key=key, title=title, abstract=abstract, first_seen_at=utcnow(), **kwargs)
        session.add(paper)
        session.commit()
        return paper.id


def outbox(settings: Settings) -> list[EmailMessage]:
    folder = settings.resolved_outbox_dir
    if not folder.exists():
        return []
    messages = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        messages.append(msg)
    return messages


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[union-attr]


def link_in(msg: EmailMessage, path_prefix: str) -> str:
    """The path of the first link in the message starting with `path_prefix` (e.g. "/confirm/")."""
    match = re.search(r"http://testserver(" + re.escape(path_prefix) + r"[A-Za-z0-9._\-]+)", text_of(msg))
    assert match, f"no {path_prefix} link in the message"
    return match.group(1)


def naive_days_ago(days: int) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)
