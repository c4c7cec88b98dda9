"""Bounce and complaint rates over 7 days in `paperboy status` and the admin API; SMTP-time rejections
count as bounce events too."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import session_scope
from service.mail.events import mail_rates
from service.mail.intake import take_in
from service.models import Delivery, MailEvent, Subscription
from service.web.app import create_app
from tests.cli import run_cli
from tests.digest.test_delivery import seed
from tests.mail import samples
from tests.mail.test_intake import mail_settings, sent_delivery
from tests.smtp_server import smtp_server

NOW = dt.datetime.now(dt.UTC)
TOKEN = "mail-admin-token"


def sent_emails(session: Session, count: int) -> None:
    """`count` digests sent to one subscription over the last days."""
    first = sent_delivery(session, "many@example.org", period="p0")
    first.sent_at = NOW  # sent_delivery's fixed date leaves the 7-day window a week after it
    sub = session.get_one(Subscription, first.subscription_id)
    for n in range(1, count):
        session.add(
            Delivery(
                subscription_id=sub.id, period=f"p{n}", status="sent", sent_at=NOW - dt.timedelta(hours=n)
            )
        )
    session.flush()


def reports(session: Session, hard: int, complaints: int, *, when: dt.datetime = NOW) -> None:
    s, tag = mail_settings(), when.isoformat()
    for n in range(hard):
        take_in(
            session,
            samples.rfc3464(f"gone{n}@example.org", report_id=f"<b{n}.{tag}@x>"),
            settings=s,
            ref="t",
            now=when,
        )
    for n in range(complaints):
        data = samples.arf(f"angry{n}@example.org", report_id=f"<c{n}.{tag}@x>")
        take_in(session, data, settings=s, ref="t", now=when)


def test_rates_over_seven_days_with_warnings_above_two_percent_and_a_tenth_of_a_percent(db: Session) -> None:
    sent_emails(db, 100)
    reports(db, hard=2, complaints=0)
    reports(db, hard=5, complaints=5, when=NOW - dt.timedelta(days=8))  # outside the window
    rates = mail_rates(db, NOW)
    assert (rates.sent, rates.bounce_rate, rates.complaint_rate) == (100, 0.02, 0.0)
    assert rates.warnings == []  # 2% is the limit, not above it
    reports(db, hard=1, complaints=1, when=NOW - dt.timedelta(minutes=1))
    rates = mail_rates(db, NOW)
    assert (rates.bounce_rate, rates.complaint_rate) == (0.03, 0.01)
    assert len(rates.warnings) == 2
    assert "bounce rate 3.00%" in rates.warnings[0] and "complaint rate 1.00%" in rates.warnings[1]


def test_paperboy_status_shows_the_mail_rates(cli_env: Engine) -> None:
    with Session(cli_env) as session, session.begin():
        sent_emails(session, 40)
        reports(session, hard=1, complaints=1)
    code, out = run_cli("status")
    assert code == 0, out
    assert "mail (7 d): sent=40 hard_bounces=1 soft_bounces=0 complaints=1" in out
    assert "bounce_rate=2.50%" in out and "complaint_rate=2.50%" in out
    assert "warning: bounce rate 2.50% over 7 days is above 2%" in out
    code, out = run_cli("status", "--json")
    assert json.loads(out)["mail_7d"]["events"] == {"hard_bounce": 1, "complaint": 1}


@pytest.fixture
def api(committed_engine: Engine) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, admin_token=SecretStr(TOKEN), secret_key=SecretStr("mail-tests"))  # type: ignore[call-arg]
    with TestClient(create_app(settings, committed_engine)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def test_the_admin_api_lists_mail_events_and_rates(api: TestClient, committed_engine: Engine) -> None:
    with Session(committed_engine) as session, session.begin():
        sent_emails(session, 10)
        reports(session, hard=2, complaints=1)
    page = api.get("/api/admin/mail-events", params={"kind": "complaint"}).json()
    assert page["total"] == 1 and page["items"][0]["address"] == "angry0@example.org"
    assert page["items"][0]["provider"] == "arf"
    assert api.get("/api/admin/mail-events", params={"address": "GONE1"}).json()["total"] == 1
    assert api.get("/api/admin/mail-events", params={"kind": "nonsense"}).status_code == 422
    rates = api.get("/api/admin/mail-rates").json()
    assert (rates["sent"], rates["bounce_rate"], rates["complaint_rate"]) == (10, 0.2, 0.1)
    assert len(rates["warnings"]) == 2
    assert api.get("/api/admin/mail-events", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_recipient_refused_at_the_smtp_hand_off_is_a_hard_bounce_event(committed_engine: Engine) -> None:
    from tests.digest.test_delivery import run

    with smtp_server() as smtp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            smtp_url=SecretStr(smtp.url),
            secret_key=SecretStr("mail-tests"),
            smtp_rate_per_s=0,
            base_url="https://paperboy.example",
        )
        sub_id = seed(committed_engine)
        smtp.handler.reject("reader@example.org", "550 5.1.1 no such user")
        assert run(committed_engine, sub_id, "2026-11-23", settings).status == "failed"
    with session_scope(committed_engine) as session:
        [event] = session.scalars(select(MailEvent)).all()
        assert (event.kind, event.provider, event.address, event.status) == (
            "hard_bounce",
            "smtp",
            "reader@example.org",
            "5.1.1",
        )
        assert event.delivery_id is not None
