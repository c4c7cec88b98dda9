"""Many digests delivered at once, with the database writes batched (issue 11: a million subscribers).

The rules of service.delivery.attempt hold; only the writes are grouped, chunk by chunk (CHUNK digests):

1. One read: the chunk's subscriptions and the delivery rows they already have (a due retry, or a
   period already done).
2. One transaction claims the chunk: a multi-row INSERT ... ON CONFLICT DO NOTHING of the new periods,
   one multi-row INSERT of their papers, a conditional UPDATE per due retry. A digest one of whose
   papers another delivery of the subscription recorded first is undone alone in that transaction,
   then delivered by deliver(), which composes from the papers left.
3. Each claimed digest is sent on the batch's channels (one SMTP connection), and marked 'sent' at
   once by one UPDATE in its own transaction; failures are marked as before (record_failure: retry
   semantics, bounces and the same Message-ID unchanged).
4. The chunk's last_sent_at and hard-bounce streaks are written together (records.note_sent).

A process killed mid-chunk leaves at most one digest sent and unmarked, as deliver() did, plus the
rest of its chunk claimed and never sent: service.delivery.recovery shows them all once the process is
known dead, and STUCK_DELIVERY_POLICY decides (`resend`: the unsent ones go out once, the one in flight
again under the same Message-ID; `hold`: an operator decides). An error that leaves the process alive
does better: what never reached a channel is given back (records.release_unsent).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select, tuple_
from sqlalchemy.orm import selectinload

from service.channels.base import Channel, DeliveryError
from service.config import Settings
from service.db import session_factory
from service.delivery.attempt import (
    CHANNELS,
    ChannelPool,
    DeliveryOutcome,
    deliver,
    not_deliverable,
    record_failure,
)
from service.delivery.batch_records import NewClaim, claim_new_many, release_unsent
from service.delivery.records import (
    Claimed,
    Sent,
    claim_retry,
    describe,
    mark_sent_now,
    note_sent,
    retry_is_due,
)
from service.digest.compose import Ranker, compose_digest
from service.digest.model import Digest
from service.models import Delivery, Profile, Subscription

log = logging.getLogger("paperboy.delivery")

CHUNK = 25  # digests claimed together: at most this many left 'claimed' by a kill -9


@dataclass(frozen=True)
class Planned:
    """A period to deliver; `digest` composed beforehand (a pass's pool matching), else composed here."""

    subscription_id: int
    period: str
    digest: Digest | None = None


# What a batch yields per planned period: its outcome, or the unexpected error that stopped it.
Result = tuple[Planned, DeliveryOutcome | Exception]


@dataclass
class _Claims:
    """A chunk after its claim: what to send, what is already settled."""

    to_send: list[tuple[Planned, Subscription, Claimed]]
    done: list[tuple[Planned, DeliveryOutcome]]
    taken: list[Planned]  # undone: delivered alone by deliver()
    new_ids: list[int]
    retry_ids: list[int]


def deliver_batch(
    engine: Engine,
    planned: Sequence[Planned],
    *,
    channel: Channel | ChannelPool,
    now: dt.datetime,
    settings: Settings,
    instance: str,
    ranker: Ranker | None = None,
    rng: random.Random | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    chunk: int = CHUNK,
) -> Iterator[Result]:
    """Deliver every planned period at most once; yields each one's result once it is recorded.

    `should_stop` is asked before each send: the chunk's claims not sent yet are given back and the
    batch ends; the periods it did not get to yield nothing. An unexpected error (a bug, the
    database) ends its chunk only; the chunk's periods without a result yield the exception.
    """
    for start in range(0, len(planned), chunk):
        part = planned[start : start + chunk]
        yielded: set[int] = set()
        try:
            for index, result in _deliver_chunk(
                engine, part, channel, now, settings, instance, ranker, rng, should_stop
            ):
                yielded.add(index)
                yield result
        except Exception as exc:
            log.exception("a chunk of %d deliveries stopped on an unexpected error", len(part))
            for index, plan in enumerate(part):
                if index not in yielded:
                    yield plan, exc
        if should_stop():
            return


def _deliver_chunk(
    engine: Engine,
    part: Sequence[Planned],
    channel: Channel | ChannelPool,
    now: dt.datetime,
    settings: Settings,
    instance: str,
    ranker: Ranker | None,
    rng: random.Random | None,
    should_stop: Callable[[], bool],
) -> Iterator[tuple[int, Result]]:
    index = {id(plan): n for n, plan in enumerate(part)}
    claims = _claim(engine, part, channel, now, settings, instance, ranker)
    for plan, outcome in claims.done:
        yield index[id(plan)], (plan, outcome)
    factory = session_factory(engine)
    sent: list[tuple[Planned, Claimed, str]] = []
    failed: list[tuple[Planned, DeliveryOutcome]] = []
    handed: set[int] = set()
    stopped = False
    error: Exception | None = None
    try:
        with _marker(engine, now) as mark:
            # In delivery id order, each marked before the next is handed over: of a chunk a kill -9
            # leaves claimed, only the first can have been sent (recovery.release_never_sent).
            for plan, sub, claimed in sorted(claims.to_send, key=lambda entry: entry[2].delivery_id):
                if should_stop():
                    stopped = True
                    break
                handed.add(claimed.delivery_id)
                sender = channel.get(sub) if isinstance(channel, ChannelPool) else channel
                try:
                    message_id = sender.send(sub, claimed.digest)
                except Exception as exc:
                    # As in deliver(): anything but a DeliveryError is most likely a bug before the
                    # network (rendering), retried like a transient error within the attempt limit.
                    failure = (
                        exc
                        if isinstance(exc, DeliveryError)
                        else DeliveryError(f"unexpected {exc!r}", permanent=False)
                    )
                    outcome = record_failure(
                        factory, sub, plan.period, claimed, failure, now=now, settings=settings, rng=rng
                    )
                    failed.append((plan, outcome))
                    continue
                # Marked before the next send (one statement, its own transaction): a kill leaves at
                # most this digest sent and unmarked, and STUCK_DELIVERY_POLICY=resend sends only it again.
                mark(claimed.delivery_id, message_id)
                sent.append((plan, claimed, message_id))
    except Exception as exc:  # raised once what was done before it is recorded and reported
        error = exc
    finally:
        # Whatever stopped the loop: the sends' other effects are written, and the claims never
        # handed to a channel are given back.
        subscriber_of = {sub.id: sub.subscriber_id for _, sub, _ in claims.to_send if sub.channel == "email"}
        with factory() as session, session.begin():
            note_sent(
                session,
                [
                    Sent(c.delivery_id, plan.subscription_id, subscriber_of.get(plan.subscription_id), mid)
                    for plan, c, mid in sent
                ],
                now=now,
            )
            release_unsent(
                session,
                [i for i in claims.new_ids if i not in handed],
                [i for i in claims.retry_ids if i not in handed],
            )
    for plan, outcome in failed:
        yield index[id(plan)], (plan, outcome)
    for plan, claimed, message_id in sent:
        outcome = DeliveryOutcome(
            "sent",
            plan.subscription_id,
            plan.period,
            delivery_id=claimed.delivery_id,
            message_id=message_id,
            papers=len(claimed.digest.items),
            attempts=claimed.attempts,
        )
        yield index[id(plan)], (plan, outcome)
    if error is not None:
        raise error
    for plan in () if stopped else claims.taken:
        # Another delivery of this subscription recorded one of these papers after the batch composed
        # them: this one alone is composed again from what is left.
        outcome = deliver(
            engine,
            plan.subscription_id,
            plan.period,
            channel=channel,
            now=now,
            settings=settings,
            instance=instance,
            ranker=ranker,
            rng=rng,
        )
        yield index[id(plan)], (plan, outcome)


@contextlib.contextmanager
def _marker(engine: Engine, now: dt.datetime) -> Iterator[Callable[[int, str], None]]:
    """mark(delivery id, message id): each mark committed at once. PostgreSQL: one statement on an
    autocommit connection kept for the chunk (no BEGIN/COMMIT round trips); SQLite: a transaction
    each (SQLAlchemy emits its own BEGIN there, see service.db)."""
    if engine.dialect.name != "postgresql":

        def mark_alone(delivery_id: int, message_id: str) -> None:
            with engine.begin() as conn:
                mark_sent_now(conn, delivery_id, message_id, now=now)

        yield mark_alone
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # Asynchronous commit: a mark does not wait for the WAL flush (a wait per digest otherwise). A
        # PostgreSQL crash can forget the last fraction of a second of marks; those rows are left
        # 'claimed', which is what STUCK_DELIVERY_POLICY exists for; claims are committed durably.
        conn.exec_driver_sql("SET synchronous_commit = off")
        try:
            yield lambda delivery_id, message_id: mark_sent_now(conn, delivery_id, message_id, now=now)
        finally:
            conn.exec_driver_sql("RESET synchronous_commit")  # the connection goes back to the pool


def _claim(
    engine: Engine,
    part: Sequence[Planned],
    channel: Channel | ChannelPool,
    now: dt.datetime,
    settings: Settings,
    instance: str,
    ranker: Ranker | None,
) -> _Claims:
    """Read the chunk, then claim what is to be sent in one transaction (deliver()'s checks, in bulk)."""
    claims = _Claims([], [], [], [], [])

    def skipped(plan: Planned, reason: str, delivery_id: int | None = None) -> None:
        outcome = DeliveryOutcome(
            "skipped", plan.subscription_id, plan.period, delivery_id=delivery_id, error=reason
        )
        claims.done.append((plan, outcome))

    factory = session_factory(engine)
    fresh: list[tuple[Planned, Subscription, Digest]] = []
    retries: list[tuple[Planned, Subscription]] = []
    with factory() as session, session.begin():
        ids = {plan.subscription_id for plan in part}
        subs = {
            sub.id: sub
            for sub in session.scalars(
                select(Subscription)
                .where(Subscription.id.in_(ids))
                .options(
                    selectinload(Subscription.subscriber),
                    selectinload(Subscription.profile).selectinload(Profile.interests),
                )
            )
        }
        existing = {
            (d.subscription_id, d.period): d
            for d in session.scalars(
                select(Delivery).where(
                    tuple_(Delivery.subscription_id, Delivery.period).in_(
                        [(plan.subscription_id, plan.period) for plan in part]
                    )
                )
            )
        }
        for plan in part:
            sub = subs.get(plan.subscription_id)
            if sub is None:
                skipped(plan, f"subscription {plan.subscription_id} does not exist")
                continue
            reason = not_deliverable(sub)
            if reason is None and sub.channel not in CHANNELS:
                reason = f"unknown channel {sub.channel!r}"
            if reason is None and not isinstance(channel, ChannelPool) and channel.name != sub.channel:
                reason = f"a {channel.name} channel cannot deliver a {sub.channel} subscription"
            if reason:
                skipped(plan, reason)
                continue
            row = existing.get((plan.subscription_id, plan.period))
            if row is not None and not retry_is_due(row, now):
                skipped(plan, describe(row), row.id)
            elif row is not None:
                retries.append((plan, sub))
            else:
                digest = plan.digest
                if digest is None:
                    digest = compose_digest(
                        session, sub, plan.period, now=now, settings=settings, ranker=ranker
                    )
                fresh.append((plan, sub, digest))

    with factory() as session, session.begin():
        news = [
            NewClaim(
                plan.subscription_id,
                plan.period,
                digest,
                not digest.items and not settings.send_empty_digests,
            )
            for plan, _, digest in fresh
        ]
        won, taken = claim_new_many(session, news, now=now, instance=instance)
        retried = {
            (plan.subscription_id, plan.period): claim_retry(
                session, sub, plan.period, now=now, settings=settings, instance=instance
            )
            for plan, sub in retries
        }
    lost = "claimed by another instance, or its retry is not due"
    for plan, sub, digest in fresh:
        key = (plan.subscription_id, plan.period)
        claimed = won.get(key)
        if key in taken:
            claims.taken.append(plan)
        elif claimed is None:
            skipped(plan, lost)
        elif claimed.status == "empty":
            outcome = DeliveryOutcome(
                "empty",
                sub.id,
                plan.period,
                delivery_id=claimed.delivery_id,
                candidates=digest.candidates,
                best_score=digest.best_score,
            )
            claims.done.append((plan, outcome))
        else:
            claims.to_send.append((plan, sub, claimed))
            claims.new_ids.append(claimed.delivery_id)
    for plan, sub in retries:
        again = retried[(plan.subscription_id, plan.period)]
        if again is None:
            skipped(plan, lost)
        else:
            claims.to_send.append((plan, sub, again))
            claims.retry_ids.append(again.delivery_id)
    return claims
