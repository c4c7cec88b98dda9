"""Slack subscriptions through the exactly-once delivery core to the loopback Slack server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack import needing_attention
from service.cli.status import collect_status
from service.config import Settings
from service.delivery import deliver
from service.models import Delivery, Subscription
from tests.digest.helpers import NOW, add_paper, keyword_ranker
from tests.slack.conftest import make_settings
from tests.slack.fake_slack import Answer, FakeSlack
from tests.slack.helpers import paper_ids, parse_message

PERIOD = "2026-11-23"


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    return make_settings(tmp_path, slack.api_url, delivery_retry_base_s=60.0)


def slack_subscription(
    engine: Engine, settings: Settings, papers: int = 3, *, webhook: str | None = None, channel: str = "C0001"
) -> int:
    with Session(engine) as session, session.begin():
        for n in range(1, papers + 1):
            add_paper(
                session, f"arxiv:2611.{n:05d}", f"Sparse attention study {n}", "We study sparse attention."
            )
        request = channel_subs.SlackSubscribe(
            channel_id=channel, interest="sparse attention", webhook_url=webhook, max_papers=50
        )
        sub, _ = channel_subs.subscribe(session, request, settings)
        return sub.id


def run(engine: Engine, settings: Settings, sub_id: int, period: str = PERIOD, now: dt.datetime = NOW):  # type: ignore[no-untyped-def]
    return deliver(
        engine, sub_id, period, now=now, settings=settings, instance="slack-test", ranker=keyword_ranker
    )


def delivery_rows(engine: Engine, sub_id: int) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)))


def test_a_digest_is_posted_once_and_recorded_with_its_ts(
    committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id = slack_subscription(committed_engine, settings)
    outcome = run(committed_engine, settings, sub_id)
    (posted,) = slack.messages("C0001")
    assert (outcome.status, outcome.message_id, outcome.papers) == ("sent", posted.ts, 3)
    assert sorted(paper_ids(parse_message(posted.payload))) == sorted(
        int(pid) for pid in _paper_ids(committed_engine, sub_id)
    )
    (row,) = delivery_rows(committed_engine, sub_id)
    assert (row.status, row.message_id) == ("sent", posted.ts)

    again = run(committed_engine, settings, sub_id)
    assert again.status == "skipped" and "already sent" in (again.error or "")
    assert len(slack.messages()) == 1 and slack.requests == 1


def _paper_ids(engine: Engine, sub_id: int) -> list[int]:
    (row,) = delivery_rows(engine, sub_id)
    with Session(engine) as session:
        return [p.paper_id for p in session.get_one(Delivery, row.id).papers]


def test_a_long_digest_goes_out_as_a_thread_recorded_by_its_parent_ts(
    committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id = slack_subscription(committed_engine, settings, papers=30)
    outcome = run(committed_engine, settings, sub_id)
    parent, *replies = slack.messages("C0001")
    assert outcome.message_id == parent.ts and len(replies) == 2
    assert {r.thread_ts for r in replies} == {parent.ts}
    assert sum(len(paper_ids(parse_message(p.payload))) for p in slack.messages()) == 30


def test_a_permanent_error_marks_the_subscription_and_stops_its_digests(
    committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id = slack_subscription(committed_engine, settings)
    slack.channel_errors["C0001"] = "not_in_channel"
    outcome = run(committed_engine, settings, sub_id)
    assert outcome.status == "failed" and "not_in_channel" in (outcome.error or "")
    with Session(committed_engine) as session:
        (flagged,) = needing_attention(session)
        assert flagged.id == sub_id and "invite the paperboy app" in (flagged.needs_attention or "")
    shown = collect_status(committed_engine, NOW)["needs_attention"]
    assert [(e["subscription"], e["address"]) for e in shown] == [(sub_id, "C0001")]  # `paperboy status`
    assert "not_in_channel" in shown[0]["why"]

    slack.channel_errors.clear()
    later = run(committed_engine, settings, sub_id, "2026-11-24", NOW + dt.timedelta(days=1))
    assert later.status == "skipped" and "needs attention" in (later.error or "")
    assert slack.messages() == []


def test_a_rate_limit_beyond_the_wait_limit_becomes_a_retry_after_it(
    committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    sub_id = slack_subscription(committed_engine, settings)
    slack.script(Answer(status=429, retry_after=900))
    outcome = run(committed_engine, settings, sub_id)
    assert outcome.status == "retry" and outcome.next_attempt_at is not None
    assert outcome.next_attempt_at >= NOW + dt.timedelta(seconds=900)
    with Session(committed_engine) as session:
        assert session.get_one(Subscription, sub_id).needs_attention is None

    retried = run(committed_engine, settings, sub_id, now=outcome.next_attempt_at)
    (posted,) = slack.messages()
    assert (retried.status, retried.message_id) == ("sent", posted.ts)
    assert [(r.status, r.attempts) for r in delivery_rows(committed_engine, sub_id)] == [("sent", 2)]


def test_a_webhook_subscription_is_delivered_once(
    committed_engine: Engine, settings: Settings, slack: FakeSlack
) -> None:
    url = slack.webhook("team-papers")
    sub_id = slack_subscription(committed_engine, settings, webhook=url, channel="team-papers")
    with Session(committed_engine) as session:
        stored = session.get_one(Subscription, sub_id).secret or ""
        assert url not in stored and "services" not in stored  # sealed, not readable in the database
    outcome = run(committed_engine, settings, sub_id)
    (posted,) = slack.messages("team-papers")
    assert outcome.status == "sent" and outcome.message_id == f"webhook:{sub_id}:{PERIOD}:1"
    parse_message(posted.payload)
    assert run(committed_engine, settings, sub_id).status == "skipped" and len(slack.messages()) == 1
