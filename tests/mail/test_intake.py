"""Returned mail stored as mail events and acted on, on SQLite and PostgreSQL; `paperboy bounces ingest`."""

from __future__ import annotations

import datetime as dt
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.links import unsubscribe_url
from service.mail.bounce_path import return_path
from service.mail.intake import take_in
from service.models import Delivery, MailEvent, Subscriber, Subscription
from tests.cli import run_cli
from tests.digest.helpers import add_subscription
from tests.mail import samples

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def mail_settings(**kw: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": "mail-tests-secret",
        "bounce_address": "bounces@mail.paperboy.example",
        "unsubscribe_mailto": "unsubscribe@paperboy.example",
        "hard_bounce_limit": 2,
        "soft_bounce_limit": 3,
        "soft_bounce_days": 7,
    }
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def sent_delivery(session: Session, email: str = "ada@example.org", period: str = "2026-11-23") -> Delivery:
    """A verified subscriber's email subscription with one sent digest."""
    sub = session.get_one(Subscription, add_subscription(session, email))
    assert sub.subscriber is not None
    sub.subscriber.verified = True
    sub.status = "active"
    delivery = Delivery(
        subscription_id=sub.id,
        period=period,
        status="sent",
        message_id=f"<digest.{sub.id}.{period}@paperboy.example>",
        sent_at=NOW - dt.timedelta(days=1),
    )
    session.add(delivery)
    session.flush()
    return delivery


def events(session: Session) -> list[MailEvent]:
    return list(session.scalars(select(MailEvent).order_by(MailEvent.id)))


def take(session: Session, data: bytes, settings: Settings, ref: str = "test.eml") -> list[str]:
    taken = take_in(session, data, settings=settings, ref=ref, now=NOW)
    return [r.kind for r in taken.recorded if not r.duplicate]


def test_a_dsn_to_the_verp_address_names_its_delivery_and_hard_bounces_flag_at_the_limit(db: Session) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    verp = return_path(s, delivery.subscription_id, delivery.period) or ""
    # The report quotes nothing that names the delivery: only the VERP address does.
    data = samples.rfc3464("ada@example.org", to=verp, message_id="<something-else@relay>")
    assert take(db, data, s) == ["hard_bounce"]
    [event] = events(db)
    assert (event.kind, event.address, event.delivery_id, event.provider, event.status, event.raw_ref) == (
        "hard_bounce",
        "ada@example.org",
        delivery.id,
        "dsn",
        "5.1.1",
        "test.eml",
    )
    subscriber = db.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
    assert subscriber is not None and subscriber.hard_bounces == 1 and not subscriber.flagged
    second = samples.rfc3464("ada@example.org", to=verp, report_id="<dsn-2@mx.example.net>")
    assert take(db, second, s) == ["hard_bounce"]
    db.refresh(subscriber)
    assert subscriber.flagged  # HARD_BOUNCE_LIMIT=2, as the SMTP 5xx path counts


def test_the_same_report_twice_is_stored_once_and_counted_once(db: Session) -> None:
    s = mail_settings()
    sent_delivery(db)
    data = samples.rfc3464("ada@example.org")
    assert take(db, data, s) == ["hard_bounce"]
    assert take(db, data, s) == []
    subscriber = db.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
    assert subscriber is not None and subscriber.hard_bounces == 1 and len(events(db)) == 1


def test_without_verp_the_original_message_id_names_the_delivery(db: Session) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    data = samples.microsoft365(
        "ada@example.org", to="bounces@mail.paperboy.example", message_id=delivery.message_id or ""
    )
    take(db, data, s)
    assert events(db)[0].delivery_id == delivery.id


def test_a_forged_verp_tag_names_no_delivery(db: Session) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    forged = f"bounces+{delivery.subscription_id}.2026-11-23.000000000000000@mail.paperboy.example"
    take(db, samples.rfc3464("ada@example.org", to=forged, message_id="<unrelated@x>"), s)
    assert events(db)[0].delivery_id is None


def test_soft_bounces_flag_only_on_enough_different_days_within_the_window(db: Session) -> None:
    s = mail_settings()  # SOFT_BOUNCE_LIMIT=3 days within SOFT_BOUNCE_DAYS=7
    sent_delivery(db)
    subscriber = db.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
    assert subscriber is not None

    def delayed(n: int, days_ago: float) -> list[str]:
        data = samples.gmail_delayed("ada@example.org", to="x@y", n=n)
        taken = take_in(db, data, settings=s, ref=str(n), now=NOW - dt.timedelta(days=days_ago))
        return [r.kind for r in taken.recorded]

    assert delayed(0, 10) == ["soft_bounce"]  # outside the window
    for n in range(1, 6):  # five deferrals of one message on one day
        assert delayed(n, 2) == ["soft_bounce"]
    assert delayed(6, 1) == ["soft_bounce"]
    db.refresh(subscriber)
    assert not subscriber.flagged and subscriber.hard_bounces == 0  # 2 days within 7
    assert delayed(7, 0) == ["soft_bounce"]
    db.refresh(subscriber)
    assert subscriber.flagged


def test_an_arf_complaint_ends_every_subscription_of_the_address_at_once(db: Session) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    other = sent_delivery(db, period="2026-11-24")  # a second subscription of the same address
    verp = return_path(s, delivery.subscription_id, delivery.period) or ""
    assert take(db, samples.arf(None, return_path=verp), s) == ["complaint"]  # recipient redacted
    [event] = events(db)
    assert event.address == "ada@example.org" and event.delivery_id == delivery.id
    for sub_id in (delivery.subscription_id, other.subscription_id):
        assert db.get_one(Subscription, sub_id).status == "unsubscribed"


def test_the_unsubscribe_mailbox_ends_the_subscription_its_signed_token_names(db: Session) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    sub = db.get_one(Subscription, delivery.subscription_id)
    token = unsubscribe_url(sub.subscriber_id, sub.id, s).rsplit("/", 1)[1]
    assert take(db, samples.unsubscribe_mail(token), s) == ["unsubscribe"]
    db.refresh(sub)
    assert sub.status == "unsubscribed"
    assert events(db)[0].subscription_id == sub.id


@pytest.mark.parametrize("how", ["unsigned", "tampered", "other key"])
def test_an_unsigned_or_tampered_unsubscribe_request_does_nothing_and_is_logged(
    db: Session, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = mail_settings()
    delivery = sent_delivery(db)
    sub = db.get_one(Subscription, delivery.subscription_id)
    token = unsubscribe_url(sub.subscriber_id, sub.id, s).rsplit("/", 1)[1]
    bad = {
        "unsigned": "eyJzIjoxLCJzdWIiOjF9.not-a-signature-at-all",
        "tampered": token[:-3] + ("abc" if token[-3:] != "abc" else "xyz"),
        "other key": unsubscribe_url(sub.subscriber_id, sub.id, mail_settings(secret_key="another")).rsplit(
            "/", 1
        )[1],
    }[how]
    caplog.set_level("WARNING", logger="paperboy.mail")
    assert take(db, samples.unsubscribe_mail(bad, sender="mallory@example.net"), s) == ["refused"]
    db.refresh(sub)
    assert sub.status == "active"
    assert "event=unsubscribe_refused" in caplog.text and "mallory@example.net" in caplog.text
    assert bad not in caplog.text  # the token itself is not logged


def test_bounces_ingest_reads_files_and_maildirs(
    cli_env: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCE_ADDRESS", "bounces@mail.paperboy.example")
    monkeypatch.setenv("UNSUBSCRIBE_MAILTO", "unsubscribe@paperboy.example")
    from service.config import get_settings

    get_settings.cache_clear()
    with Session(cli_env) as session, session.begin():
        delivery = sent_delivery(session)
        sub_id, period = delivery.subscription_id, delivery.period
    verp = return_path(get_settings(), sub_id, period) or ""
    single = tmp_path / "dsn.eml"
    single.write_bytes(samples.rfc3464("ada@example.org", to=verp))
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(samples.qmail("ada@example.org", to=verp))
    box.add(samples.personal_mail("bounces@mail.paperboy.example"))
    box.close()
    code, out = run_cli("bounces", "ingest", "--dry-run", str(single), str(tmp_path / "Maildir"))
    assert code == 0 and "events=2" in out and "dry run: nothing stored" in out
    with Session(cli_env) as session:
        assert session.scalar(select(func.count()).select_from(MailEvent)) == 0
        assert (
            session.scalar(select(Subscriber.hard_bounces).where(Subscriber.email == "ada@example.org")) == 0
        )
    code, out = run_cli("bounces", "ingest", str(single), str(tmp_path / "Maildir"))
    assert code == 0, out
    assert "messages=3 events=2 duplicates=0 unrecognised=1 failed=0" in out
    assert "hard_bounce ada@example.org delivery" in out
    code, out = run_cli("bounces", "ingest", str(single))
    assert code == 0 and "duplicates=1" in out  # ingesting again changes nothing
    code, out = run_cli("bounces", "ingest", str(tmp_path / "missing"))
    assert code == 2 and "missing: no such file or folder" in out
    with Session(cli_env) as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
        assert subscriber is not None and subscriber.hard_bounces == 2
        refs = sorted(e.raw_ref for e in session.scalars(select(MailEvent)))
        assert str(single) in refs and any(r.startswith(str(tmp_path / "Maildir") + "#") for r in refs)


def test_reported_hard_bounces_flag_even_though_each_hand_off_resets_the_smtp_streak(db: Session) -> None:
    s = mail_settings()  # HARD_BOUNCE_LIMIT=2
    sent_delivery(db)
    subscriber = db.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
    assert subscriber is not None
    take(db, samples.rfc3464("ada@example.org", report_id="<a@x>"), s)
    subscriber.hard_bounces = 0  # the next digest was accepted at the hand-off (mark_sent does this)
    db.flush()
    take(db, samples.rfc3464("ada@example.org", report_id="<b@x>"), s)
    db.refresh(subscriber)
    assert subscriber.flagged


def test_a_delivery_report_between_hard_bounces_ends_the_streak(db: Session) -> None:
    s = mail_settings()
    sent_delivery(db)
    later = NOW + dt.timedelta(hours=1)
    take_in(db, samples.rfc3464("ada@example.org", report_id="<a@x>"), settings=s, ref="a", now=NOW)
    delivered = samples.rfc3464("ada@example.org", action="delivered", status="2.0.0", report_id="<d@x>")
    take_in(db, delivered, settings=s, ref="d", now=later)
    subscriber = db.scalar(select(Subscriber).where(Subscriber.email == "ada@example.org"))
    assert subscriber is not None
    subscriber.hard_bounces = 0
    db.flush()
    bounce = samples.rfc3464("ada@example.org", report_id="<b@x>")
    take_in(db, bounce, settings=s, ref="b", now=later + dt.timedelta(hours=1))
    db.refresh(subscriber)
    assert not subscriber.flagged
