"""Exactly-once delivery against real databases (SQLite, PostgreSQL) and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

import service.delivery.attempt as delivery_module
from service.channels.base import DeliveryError
from service.channels.email import EmailChannel
from service.config import Settings
from service.db import session_scope
from service.delivery import ChannelPool, deliver, retries_due
from service.delivery.records import resolve_stuck
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Paper, Subscriber, Subscription
from tests.digest.helpers import NOW, add_paper, add_subscription, keyword_ranker
from tests.smtp_server import SmtpServer, smtp_server

P1, P2, P3 = "2026-11-23", "2026-11-24", "2026-11-25"
DAY = dt.timedelta(days=1)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    return Settings(
        _env_file=None,
        var_dir=tmp_path,
        smtp_url=SecretStr(smtp.url),
        smtp_rate_per_s=0,
        smtp_timeout_s=5,
        delivery_retry_base_s=60,
        delivery_max_attempts=3,
        hard_bounce_limit=2,
        base_url="https://paperboy.example",
    )


def seed(
    engine: Engine,
    email: str = "reader@example.org",
    papers: int = 3,
    interest: str = "sparse attention",
    **options: object,
) -> int:
    with session_scope(engine) as session:
        sub_id = add_subscription(session, email, interest, **options)
        for n in range(papers):
            add_paper(session, f"arxiv:{email}:{n}", f"Sparse attention, part {n}", "On sparse attention.")
    return sub_id


def run(
    engine: Engine, sub_id: int, period: str, settings: Settings, *, now: dt.datetime = NOW, **kw: object
):  # type: ignore[no-untyped-def]
    kw.setdefault("ranker", keyword_ranker)
    return deliver(
        engine, sub_id, period, now=now, settings=settings, instance="test", rng=random.Random(1), **kw
    )  # type: ignore[arg-type]


def row(engine: Engine, sub_id: int, period: str) -> Delivery:
    with session_scope(engine) as session:
        return session.scalars(
            select(Delivery).where(Delivery.subscription_id == sub_id, Delivery.period == period)
        ).one()


def recorded(engine: Engine, sub_id: int) -> list[int]:
    with session_scope(engine) as session:
        return list(
            session.scalars(select(DeliveryPaper.paper_id).where(DeliveryPaper.subscription_id == sub_id))
        )


def test_a_period_is_delivered_once(committed_engine: Engine, settings: Settings, smtp: SmtpServer) -> None:
    sub_id = seed(committed_engine)
    first = run(committed_engine, sub_id, P1, settings)
    assert (first.status, first.papers, first.attempts) == ("sent", 3, 1)
    again = run(committed_engine, sub_id, P1, settings, now=NOW + DAY)
    assert again.status == "skipped" and "already sent" in (again.error or "")
    assert len(smtp.messages) == 1
    msg = smtp.messages[0].message
    assert msg["Message-ID"] == first.message_id
    assert msg["Subject"] == "3 new papers on sparse attention · Mon 23 Nov"
    d = row(committed_engine, sub_id, P1)
    assert (d.status, d.attempts, d.message_id, d.sent_at, d.claimed_by) == (
        "sent",
        1,
        first.message_id,
        NOW,
        "test",
    )
    assert len(recorded(committed_engine, sub_id)) == 3
    with session_scope(committed_engine) as session:
        assert session.get_one(Subscription, sub_id).last_sent_at == NOW


def test_a_paper_never_appears_in_two_digests(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    assert run(committed_engine, sub_id, P1, settings).status == "sent"
    with session_scope(committed_engine) as session:
        # A later dump brings one of the sent papers again (its first_seen_at moves into the next
        # window), plus one new paper.
        session.execute(
            update(Paper).where(Paper.key == "arxiv:reader@example.org:0").values(first_seen_at=NOW + DAY / 2)
        )
        add_paper(session, "arxiv:new", "Sparse attention, the sequel", seen=NOW + DAY / 2)
    second = run(committed_engine, sub_id, P2, settings, now=NOW + DAY)
    assert (second.status, second.papers) == ("sent", 1)
    titles = [m.message.get_body(("plain",)).get_content() for m in smtp.messages]
    assert "the sequel" in titles[1] and "part 0" not in titles[1]
    ids = recorded(committed_engine, sub_id)
    assert len(ids) == len(set(ids)) == 4


def test_a_crash_between_send_and_mark_never_sends_again(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub_id = seed(committed_engine)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(delivery_module, "mark_sent", crash)
    with pytest.raises(RuntimeError):
        run(committed_engine, sub_id, P1, settings)
    monkeypatch.undo()
    assert len(smtp.messages) == 1
    assert row(committed_engine, sub_id, P1).status == "claimed"
    for later in (NOW, NOW + DAY, NOW + 30 * DAY):
        outcome = run(committed_engine, sub_id, P1, settings, now=later)
        assert outcome.status == "skipped" and "never marked" in (outcome.error or "")
    assert len(smtp.messages) == 1
    with session_scope(committed_engine) as session:
        assert retries_due(session, NOW + 30 * DAY) == []


@pytest.mark.parametrize("was_sent", [True, False])
def test_an_operator_settles_a_delivery_a_crash_left_claimed(
    committed_engine: Engine,
    settings: Settings,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    was_sent: bool,
) -> None:
    sub_id = seed(committed_engine)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(delivery_module, "mark_sent", crash)
    with pytest.raises(RuntimeError):
        run(committed_engine, sub_id, P1, settings)
    monkeypatch.undo()
    first = smtp.messages[0].message
    stuck = row(committed_engine, sub_id, P1)
    with session_scope(committed_engine) as session:
        resolve_stuck(session, stuck.id, was_sent=was_sent, now=NOW)
        with pytest.raises(LookupError, match="not 'claimed'"):
            resolve_stuck(session, stuck.id, was_sent=was_sent, now=NOW)
    outcome = run(committed_engine, sub_id, P1, settings, now=NOW + DAY)
    if was_sent:
        assert outcome.status == "skipped" and len(smtp.messages) == 1
    else:
        # The same recorded papers, under the same Message-ID, exactly one more time.
        assert outcome.status == "sent" and len(smtp.messages) == 2
        again = smtp.messages[1].message
        assert again["Message-ID"] == first["Message-ID"]
        assert again["Subject"] == first["Subject"]
        assert run(committed_engine, sub_id, P1, settings, now=NOW + 2 * DAY).status == "skipped"
        assert len(smtp.messages) == 2
    assert row(committed_engine, sub_id, P1).status == "sent"


def test_a_process_killed_right_after_sending_never_sends_again(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)

    class DiesAfterSending(EmailChannel):
        def send(self, subscription: Subscription, digest: Digest) -> str:
            super().send(subscription, digest)
            raise KeyboardInterrupt  # SIGINT, or anything that kills the process, after the send

    with pytest.raises(KeyboardInterrupt):
        run(committed_engine, sub_id, P1, settings, channel=DiesAfterSending(settings))
    assert run(committed_engine, sub_id, P1, settings).status == "skipped"
    assert len(smtp.messages) == 1


def test_a_transient_failure_is_retried_later_with_the_same_digest(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    smtp.handler.script("rcpt", "451 4.3.0 try again later")
    first = run(committed_engine, sub_id, P1, settings)
    assert first.status == "retry" and "451" in (first.error or "")
    assert first.next_attempt_at is not None
    assert NOW + dt.timedelta(seconds=30) <= first.next_attempt_at <= NOW + dt.timedelta(seconds=60)
    assert run(committed_engine, sub_id, P1, settings).status == "skipped"  # not due yet
    with session_scope(committed_engine) as session:
        assert retries_due(session, NOW) == []
        assert retries_due(session, first.next_attempt_at) == [(sub_id, P1)]
        add_paper(
            session,
            "arxiv:late",
            "Sparse attention, arrived after the claim",
            seen=NOW + dt.timedelta(seconds=1),
        )
    second = run(committed_engine, sub_id, P1, settings, now=first.next_attempt_at)
    assert (second.status, second.attempts, second.papers) == ("sent", 2, 3)
    assert len(smtp.messages) == 1
    assert "arrived after the claim" not in smtp.messages[0].message.get_body(("plain",)).get_content()


def test_backoff_grows_and_attempts_run_out(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    smtp.handler.reject("reader@example.org", "452 4.2.2 mailbox full")
    now, delays = NOW, []
    for _ in range(3):
        outcome = run(committed_engine, sub_id, P1, settings, now=now)
        if outcome.next_attempt_at:
            delays.append((outcome.next_attempt_at - now).total_seconds())
            now = outcome.next_attempt_at
    assert outcome.status == "failed" and outcome.attempts == 3
    assert 30 <= delays[0] <= 60 and 60 <= delays[1] <= 120
    assert recorded(committed_engine, sub_id) == []  # released for the next digest
    smtp.handler.rejected.clear()
    nxt = run(committed_engine, sub_id, P2, settings, now=now + DAY)
    assert (nxt.status, nxt.papers) == ("sent", 3)
    with session_scope(committed_engine) as session:
        assert session.scalar(select(Subscriber.hard_bounces)) == 0  # transient failures are not bounces


def test_hard_bounces_are_counted_and_flag_the_address(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    smtp.handler.reject("reader@example.org", "550 5.1.1 no such user")
    first = run(committed_engine, sub_id, P1, settings)
    assert first.status == "failed" and first.attempts == 1 and "550" in (first.error or "")
    with session_scope(committed_engine) as session:
        assert session.scalar(select(Subscriber.hard_bounces)) == 1
    assert run(committed_engine, sub_id, P2, settings, now=NOW + DAY).status == "failed"
    with session_scope(committed_engine) as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.hard_bounces, subscriber.flagged) == (2, True)
    third = run(committed_engine, sub_id, P3, settings, now=NOW + 2 * DAY)
    assert third.status == "skipped" and "flagged" in (third.error or "")
    assert smtp.messages == []


def test_a_successful_send_ends_a_bounce_streak(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    smtp.handler.script("rcpt", "550 5.1.1 no such user")
    assert run(committed_engine, sub_id, P1, settings).status == "failed"
    assert run(committed_engine, sub_id, P2, settings, now=NOW + DAY).status == "sent"
    with session_scope(committed_engine) as session:
        assert session.scalar(select(Subscriber.hard_bounces)) == 0


class Refusing:
    """A channel of another kind whose sends fail (Slack's channel_not_found, a 429, a bug)."""

    name = "test-chat"
    error: Exception = DeliveryError("channel_not_found", permanent=True)

    def __init__(self, settings: Settings) -> None:
        self.sent = 0

    def send(self, subscription: Subscription, digest: Digest) -> str:
        raise self.error

    def close(self) -> None:
        pass


def _chat_subscription(engine: Engine) -> int:
    sub_id = seed(engine)
    with session_scope(engine) as session:
        session.get_one(Subscription, sub_id).channel = "test-chat"
    return sub_id


def test_a_permanent_error_on_another_channel_needs_attention(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(delivery_module.CHANNELS, "test-chat", f"{__name__}:Refusing")
    sub_id = _chat_subscription(committed_engine)
    assert run(committed_engine, sub_id, P1, settings).status == "failed"
    with session_scope(committed_engine) as session:
        assert session.get_one(Subscription, sub_id).needs_attention == "channel_not_found"
        assert session.scalar(select(Subscriber.hard_bounces)) == 0
    later = run(committed_engine, sub_id, P2, settings, now=NOW + DAY)
    assert later.status == "skipped" and "needs attention" in (later.error or "")


def test_retry_after_and_unexpected_errors(
    committed_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(delivery_module.CHANNELS, "test-chat", f"{__name__}:Refusing")
    sub_id = _chat_subscription(committed_engine)
    monkeypatch.setattr(Refusing, "error", DeliveryError("rate limited", permanent=False, retry_after=900))
    limited = run(committed_engine, sub_id, P1, settings)
    assert limited.status == "retry" and limited.next_attempt_at == NOW + dt.timedelta(seconds=900)
    monkeypatch.setattr(Refusing, "error", KeyError("template variable"))
    assert limited.next_attempt_at is not None
    broken = run(committed_engine, sub_id, P1, settings, now=limited.next_attempt_at)
    assert broken.status == "retry" and "KeyError" in (broken.error or "") and broken.attempts == 2


def test_an_empty_period_is_recorded_not_sent(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine, papers=0)
    outcome = run(committed_engine, sub_id, P1, settings)
    assert outcome.status == "empty"
    assert row(committed_engine, sub_id, P1).status == "empty"
    assert run(committed_engine, sub_id, P1, settings).status == "skipped"
    assert smtp.messages == []
    chatty = settings.model_copy(update={"send_empty_digests": True})
    sent = run(committed_engine, sub_id, P2, chatty, now=NOW + DAY)
    assert (sent.status, sent.papers) == ("sent", 0)
    assert smtp.messages[0].message["Subject"] == "No new papers on sparse attention · Tue 24 Nov"


@pytest.mark.parametrize("change", ["paused", "unsubscribed", "pending"])
def test_inactive_subscriptions_get_nothing(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer, change: str
) -> None:
    sub_id = seed(committed_engine)
    with session_scope(committed_engine) as session:
        sub = session.get_one(Subscription, sub_id)
        if change == "paused":
            sub.paused = True
        elif change == "unsubscribed":
            sub.status = "unsubscribed"
        else:
            sub.status = "pending"
            session.scalars(select(Subscriber)).one().verified = False
    outcome = run(committed_engine, sub_id, P1, settings)
    assert outcome.status == "skipped" and outcome.delivery_id is None
    with session_scope(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert smtp.messages == []


def _race(engine: Engine, settings: Settings, jobs: list[tuple[int, str]]) -> list[str]:
    """Run deliveries in threads that all finish composing before any of them claims."""
    barrier = threading.Barrier(len(jobs), timeout=30)

    def ranker(session, profile, papers, *, interests):  # type: ignore[no-untyped-def]
        items = keyword_ranker(session, profile, papers, interests=interests)
        barrier.wait()
        return items

    results: list[str] = []
    errors: list[BaseException] = []

    def worker(sub_id: int, period: str) -> None:
        try:
            results.append(run(engine, sub_id, period, settings, ranker=ranker).status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return sorted(results)


def test_two_dispatchers_racing_for_one_period_send_once(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    assert _race(committed_engine, settings, [(sub_id, P1), (sub_id, P1)]) == ["sent", "skipped"]
    assert len(smtp.messages) == 1
    # With no papers to collide on, only the (subscription, period) claim keeps it to one send.
    empty = seed(committed_engine, "empty@example.org", papers=0, interest="protein folding")
    chatty = settings.model_copy(update={"send_empty_digests": True})
    assert _race(committed_engine, chatty, [(empty, P1), (empty, P1)]) == ["sent", "skipped"]
    assert len(smtp.messages) == 2


def test_two_periods_racing_for_the_same_papers_never_share_one(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    sub_id = seed(committed_engine)
    assert _race(committed_engine, settings, [(sub_id, P1), (sub_id, P2)]) == ["sent", "skipped"]
    assert len(smtp.messages) == 1
    ids = recorded(committed_engine, sub_id)
    assert len(ids) == len(set(ids)) == 3


def test_a_channel_pool_sends_a_batch_over_one_connection(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    subs = [seed(committed_engine, f"reader{n}@example.org") for n in range(4)]
    with ChannelPool(settings) as pool:
        outcomes = [run(committed_engine, s, P1, settings, channel=pool) for s in subs]
    assert [o.status for o in outcomes] == ["sent"] * 4
    assert len(smtp.handler.sessions) == 1
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [f"reader{n}@example.org" for n in range(4)]


def test_end_to_end_through_the_matching_engine(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    """No test ranker: service.digest.rank (the matching engine) chooses, explains and highlights."""
    with session_scope(committed_engine) as session:
        sub_id = add_subscription(session, "reader@example.org", "sparse attention")
        add_paper(
            session,
            "arxiv:2611.00001",
            "Sparse attention for long-context transformers\r\nBcc: victim@example.org",
            "We propose a sparse attention scheme <script>alert(1)</script> that cuts memory.",
            upvotes=12,
            organization="ACME Labs",
        )
        add_paper(
            session, "arxiv:2611.00002", "Protein structure prediction", "Diffusion models fold proteins."
        )
        add_paper(
            session,
            "arxiv:2611.00003",
            "A KV cache with sparse attention patterns",
            "Sparse attention patterns.",
        )
    outcome = deliver(committed_engine, sub_id, P1, now=NOW, settings=settings, instance="test")
    assert (outcome.status, outcome.papers) == ("sent", 2)
    [received] = smtp.messages
    msg = received.message
    assert received.rcpt_tos == ["reader@example.org"] and msg["Bcc"] is None
    assert msg["Subject"] == "2 new papers on sparse attention · Mon 23 Nov"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Protein structure" not in text and "Protein structure" not in html
    assert "Sparse attention for long-context transformers Bcc: victim@example.org" in text
    assert "*sparse attention*" in text.lower()
    assert '<span class="hit"' in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "matches “sparse attention”" in text
    assert "https://arxiv.org/abs/2611.00001" in html and "https://paperboy.example/feedback/" in html
    assert "▲ 12 upvotes" in text and "ACME Labs" in html
    with session_scope(committed_engine) as session:
        reasons = session.scalars(select(DeliveryPaper.reason).order_by(DeliveryPaper.rank)).all()
    assert all(r["why"] and r["snippet"] for r in reasons)


def test_a_channel_only_delivers_its_own_kind(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(delivery_module.CHANNELS, "test-chat", f"{__name__}:Refusing")
    sub_id = _chat_subscription(committed_engine)
    outcome = run(committed_engine, sub_id, P1, settings, channel=EmailChannel(settings))
    assert outcome.status == "skipped" and "cannot deliver a test-chat subscription" in (outcome.error or "")
    assert smtp.messages == []
    with session_scope(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
