"""The match side of the Celery path in one worker process: the match tasks of one pass share the
pool of papers (loaded once, as the in-process pass does), and each logs its own costs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from service.config import get_settings
from service.delivery.claims import claim_many
from service.delivery.tasks import QUEUED_CLAIM, configure, match_shard
from service.digest import compose
from tests.digest.helpers import add_paper
from tests.scheduler.workers import DUE, T0, subscribe_many

PAPERS_LOADED = re.compile(r"^SELECT papers\.id, .*\sFROM papers\s+WHERE papers\.first_seen_at >", re.DOTALL)


def _queued_items(queue: str) -> dict[int, list[int]]:
    """The deliver tasks waiting on `queue`, taken off it: subscription -> paper ids of its digest."""
    app = configure(get_settings())
    items: dict[int, list[int]] = {}
    with app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            args, _kwargs, _embed = json.loads(message.body)  # Celery's protocol 2, JSON
            for subscription_id, _period, composed, _next in args[0]:
                items[subscription_id] = [item["paper_id"] for item in composed or []]
    return items


def _claim(engine: Engine, count: int) -> tuple[list[int], dt.datetime]:
    """`count` subscriptions to one paper, due at DUE and claimed as the clock claims them."""
    configure(get_settings())
    ids = subscribe_many(engine, count)
    until, won = claim_many(engine, ids, DUE, hold=QUEUED_CLAIM)
    assert won == set(ids)
    return ids, until


def test_the_match_tasks_of_one_pass_load_the_pool_once_and_log_their_costs(
    worker_env: dict[str, str],
    pg_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, until = _claim(pg_engine, 4)
    settings = get_settings()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(pg_engine, "before_cursor_execute", record)
    try:
        with caplog.at_level(logging.INFO, logger="paperboy.tasks"):
            match_shard(pg_engine, settings, [(i, None) for i in ids[:2]], until, DUE)
            first = [s for s in statements if PAPERS_LOADED.search(s)]
            statements.clear()
            match_shard(pg_engine, settings, [(i, None) for i in ids[2:]], until, DUE)
            second = [s for s in statements if PAPERS_LOADED.search(s)]
    finally:
        event.remove(pg_engine, "before_cursor_execute", record)

    assert len(first) == 1 and second == []
    queued = _queued_items(worker_env["QUEUE_PREFIX"] + "email")
    assert sorted(queued) == sorted(ids)
    assert all(len(papers) == 1 for papers in queued.values())  # the one paper, in every digest
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=match ")]
    assert len(lines) == 2
    for line in lines:
        fields = dict(pair.split("=", 1) for pair in line.split()[1:])
        assert (fields["subscriptions"], fields["composed"], fields["deliver_tasks"]) == ("2", "2", "1")
        assert float(fields["cpu_s"]) >= 0 and float(fields["seconds"]) >= float(fields["rank_s"]) >= 0


def test_a_paper_stored_in_the_window_between_two_match_tasks_reaches_the_second(
    worker_env: dict[str, str], pg_engine: Engine
) -> None:
    ids, until = _claim(pg_engine, 2)
    settings = get_settings()
    match_shard(pg_engine, settings, [(ids[0], None)], until, DUE)
    with Session(pg_engine) as s, s.begin():
        late = add_paper(
            s, "arxiv:2611.00002", "Sparse attention, again", "More sparse attention.", seen=T0
        ).id
    match_shard(pg_engine, settings, [(ids[1], None)], until, DUE)

    queued = _queued_items(worker_env["QUEUE_PREFIX"] + "email")
    assert late not in queued[ids[0]]
    assert late in queued[ids[1]]


def test_a_match_task_hands_on_items_and_signs_no_links(
    worker_env: dict[str, str], pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deliver task builds the digest it sends, signed links included; signing them in the match
    # task too was thrown away with the digest (about 40 HMACs a digest, counted as ranking time).
    ids, until = _claim(pg_engine, 2)
    signed: list[int] = []
    original = compose.digest_links

    def counted(subscription: Any, *args: Any, **kwargs: Any) -> Any:
        signed.append(subscription.id)
        return original(subscription, *args, **kwargs)

    monkeypatch.setattr(compose, "digest_links", counted)
    match_shard(pg_engine, get_settings(), [(i, None) for i in ids], until, DUE)

    assert signed == []
    queued = _queued_items(worker_env["QUEUE_PREFIX"] + "email")
    assert sorted(queued) == sorted(ids) and all(len(p) == 1 for p in queued.values())
