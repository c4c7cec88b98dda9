"""deliver_batch records what deliver() records, and a conflict in one digest loses no other."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from service import why
from service.config import Settings
from service.db import session_scope
from service.delivery import ChannelPool, deliver
from service.delivery.batch import Planned, deliver_batch
from service.digest.compose import compose_digest
from service.digest.model import Digest
from service.models import Delivery, DeliveryPaper, Subscription
from tests.digest.helpers import NOW, add_paper, add_subscription, keyword_ranker
from tests.smtp_server import SmtpServer, smtp_server

P1 = "2026-11-23"


@pytest.fixture
def smtp() -> Any:
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
        base_url="https://paperboy.example",
    )


def _seed(engine: Engine, emails: list[str], interest: str = "sparse attention") -> list[int]:
    with session_scope(engine) as session:
        ids = [add_subscription(session, email, interest) for email in emails]
        for n in range(4):
            add_paper(session, f"arxiv:2611.{n:05d}", f"Sparse attention, part {n}", "On sparse attention.")
    return ids


def _batch(engine: Engine, settings: Settings, planned: list[Planned]) -> list[Any]:
    with ChannelPool(settings) as pool:
        results = list(
            deliver_batch(
                engine,
                planned,
                channel=pool,
                now=NOW,
                settings=settings,
                instance="test",
                ranker=keyword_ranker,
                rng=random.Random(1),
            )
        )
    return [result for _, result in results]


def _recorded(engine: Engine, sub_id: int) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """A subscription's delivery row and papers, without what differs by subscription."""
    with session_scope(engine) as session:
        d = session.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)).one()
        papers = session.execute(
            select(DeliveryPaper.paper_id, DeliveryPaper.rank, DeliveryPaper.score, DeliveryPaper.reason)
            .where(DeliveryPaper.delivery_id == d.id)
            .order_by(DeliveryPaper.rank)
        ).all()
        last_sent = session.get_one(Subscription, sub_id).last_sent_at
        message_id = (d.message_id or "").replace(f".{sub_id}.", ".N.")
        row = (
            d.period,
            d.status,
            d.attempts,
            d.claimed_by,
            d.claimed_at,
            d.created_at,
            d.sent_at,
            message_id,
        )
        return (*row, d.last_error, d.next_attempt_at, last_sent), [tuple(p) for p in papers]


def _same(outcome: Any) -> tuple[Any, ...]:
    return (
        outcome.status,
        outcome.period,
        outcome.papers,
        outcome.attempts,
        outcome.error,
        why.classify(outcome),
    )


@pytest.mark.parametrize("interest", ["sparse attention", "protein folding"])  # sent / empty
def test_a_batch_records_exactly_what_deliver_records(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer, interest: str
) -> None:
    alone, batched, other = _seed(
        committed_engine, ["a@example.org", "b@example.org", "c@example.org"], interest
    )
    single = deliver(
        committed_engine, alone, P1, now=NOW, settings=settings, instance="test", ranker=keyword_ranker
    )
    # One composed by the batch, one composed beforehand (a pass's pool matching).
    with session_scope(committed_engine) as session:
        sub = session.get_one(Subscription, other)
        composed = compose_digest(session, sub, P1, now=NOW, settings=settings, ranker=keyword_ranker)
    outcomes = _batch(committed_engine, settings, [Planned(batched, P1), Planned(other, P1, composed)])
    assert [_same(o) for o in outcomes] == [_same(single)] * 2
    assert single.status == ("sent" if interest == "sparse attention" else "empty")
    assert _recorded(committed_engine, batched) == _recorded(committed_engine, alone)
    assert _recorded(committed_engine, other) == _recorded(committed_engine, alone)
    subjects = {m.message["Subject"] for m in smtp.messages}
    assert len(smtp.messages) == (3 if single.status == "sent" else 0) and len(subjects) <= 1
    # And a second batch of the same periods sends nothing: each is already done.
    again = _batch(committed_engine, settings, [Planned(batched, P1), Planned(other, P1, composed)])
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert len(smtp.messages) == (3 if single.status == "sent" else 0)


def test_a_paper_another_delivery_took_undoes_only_its_own_digest(
    committed_engine: Engine, settings: Settings, smtp: SmtpServer
) -> None:
    first, racing, last = _seed(committed_engine, ["a@example.org", "b@example.org", "c@example.org"])
    digests: dict[int, Digest] = {}
    with session_scope(committed_engine) as session:
        for sid in (first, racing, last):
            sub = session.get_one(Subscription, sid)
            digests[sid] = compose_digest(session, sub, P1, now=NOW, settings=settings, ranker=keyword_ranker)
        # After the batch composed, another delivery of `racing` (an operator's `digest send` of
        # yesterday's period, say) recorded one of its papers.
        taken = digests[racing].items[0].paper_id
        earlier = Delivery(
            subscription_id=racing,
            period="2026-11-22",
            status="sent",
            attempts=1,
            created_at=NOW - dt.timedelta(days=1),
            updated_at=NOW,
        )
        session.add(earlier)
        session.flush()
        session.add(
            DeliveryPaper(delivery_id=earlier.id, subscription_id=racing, paper_id=taken, rank=1, score=1)
        )
    outcomes = _batch(committed_engine, settings, [Planned(sid, P1, digests[sid]) for sid in digests])
    by_sub = {o.subscription_id: o for o in outcomes}
    assert {sid: (o.status, o.papers) for sid, o in by_sub.items()} == {
        first: ("sent", 4),
        last: ("sent", 4),
        racing: ("sent", 3),  # composed again from the papers left
    }
    with session_scope(committed_engine) as session:
        held = session.scalars(
            select(DeliveryPaper.paper_id).where(DeliveryPaper.subscription_id == racing)
        ).all()
        periods = session.scalars(select(Delivery.period).where(Delivery.subscription_id == racing)).all()
    assert sorted(held) == sorted({*held}) and len(held) == 4  # every paper once, `taken` in the earlier one
    assert sorted(periods) == ["2026-11-22", P1]
    assert sorted(m.message["To"] for m in smtp.messages) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
