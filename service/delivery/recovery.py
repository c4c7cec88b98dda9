"""Crash recovery without waiting and without guessing: who is alive, and what a dead one left behind.

Every process that claims work (a dispatch pass, a worker) keeps a heartbeat: a lease named
`alive:<instance>` in the leases table, renewed every HEARTBEAT_S (a setting, 10 s) and valid for
three beats (ALIVE_S). An instance whose heartbeat is gone is dead (kill -9, power loss), so:

* a subscription it claimed (subscriptions.claimed_by) is due again at once, instead of after the
  10-minute claim: the next pass delivers it, and the claim rules make that a no-op if it went out;
* a delivery it left 'claimed' (between send and mark: it may or may not have been sent) is shown by
  `paperboy status` at once, and after STUCK_DELIVERY_DELAY_S, STUCK_DELIVERY_POLICY decides it:
  `hold` (default) leaves it to an operator (`paperboy deliveries resolve`), `resend` makes it a
  retry due now: the same recorded papers under the same Message-ID, which mail clients use to drop
  the copy if the first one did arrive.

A delivery is handed to its channel only after every earlier one of its claim (same instance, same
claimed_at) is marked, in delivery id order (service.delivery.batch). So of the rows a dead instance
left claimed together, only the lowest id can have been in flight: the others were never sent, and
are made retries due now at once (no guess, no operator), whatever the policy.

A claim without an owner (claimed_by NULL: a claim queued on the broker, or written by an older
version) is left to its expiry, as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import ColumnElement, Engine, Select, and_, or_, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.delivery import lease
from service.delivery.claims import CLAIM, QUEUED_CLAIM
from service.delivery.records import resolve_stuck
from service.models import Delivery, Lease, Subscription

log = logging.getLogger("paperboy.recovery")

HEARTBEAT_S = 10.0
ALIVE_S = 3 * HEARTBEAT_S  # three missed heartbeats: dead
_PREFIX = "alive:"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Heartbeat:
    """Keeps `alive:<instance>` renewed from a daemon thread while the block runs; released after."""

    def __init__(
        self,
        engine: Engine,
        instance: str,
        *,
        now: Callable[[], dt.datetime] = _now,
        interval_s: float = HEARTBEAT_S,
    ) -> None:
        self.engine, self.instance, self.interval_s, self.now = engine, instance, interval_s, now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        ttl = dt.timedelta(seconds=3 * self.interval_s)
        lease.acquire(self.engine, _PREFIX + self.instance, self.instance, now=self.now(), ttl=ttl)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # the database may be briefly away; the next beat tries again
                log.warning("heartbeat of %s failed", self.instance, exc_info=True)

    def start(self, *, beat_now: bool = False) -> Heartbeat:
        """Beat every interval from a thread; the first beat may wait: claims younger than ALIVE_S
        are never taken for dead, so a short pass need not write at all."""
        if beat_now:
            self.beat()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.instance}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        lease.release(self.engine, _PREFIX + self.instance, self.instance)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def _alive(now: dt.datetime) -> Select[tuple[str]]:
    """Holders of a live heartbeat, as a subquery."""
    return select(Lease.holder).where(Lease.name.startswith(_PREFIX), Lease.expires_at > now)


def recover_claims(engine: Engine, now: dt.datetime, alive_s: float = ALIVE_S) -> int:
    """Subscriptions claimed (more than ALIVE_S ago) by a dead instance are due again now: a pass's
    claims (CLAIM), and a clock's queued claims (QUEUED_CLAIM) it died before handing to the broker."""
    # A claim runs until claimed_at + its hold, so one made ALIVE_S ago ends before this; an expiry
    # past now + CLAIM can only be a queued claim's.
    alive = dt.timedelta(seconds=alive_s)
    settled = or_(
        and_(Subscription.next_digest_at > now, Subscription.next_digest_at <= now + CLAIM - alive),
        and_(
            Subscription.next_digest_at > now + CLAIM,
            Subscription.next_digest_at <= now + QUEUED_CLAIM - alive,
        ),
    )
    with engine.begin() as conn:
        return conn.execute(
            update(Subscription)
            .where(
                Subscription.claimed_by.is_not(None),
                settled,
                Subscription.claimed_by.not_in(_alive(now)),
            )
            .values(next_digest_at=now, claimed_by=None)
        ).rowcount


def owner_dead(now: dt.datetime, alive_s: float = ALIVE_S) -> ColumnElement[bool]:
    """A delivery's claimer is not alive. A claim younger than ALIVE_S may belong to a process that
    has not beaten yet (`paperboy digest send`), so it is given that long."""
    return and_(
        Delivery.claimed_at <= now - dt.timedelta(seconds=alive_s),
        or_(Delivery.claimed_by.is_(None), Delivery.claimed_by.not_in(_alive(now))),
    )


def _stuck(now: dt.datetime, alive_s: float) -> ColumnElement[bool]:
    return and_(Delivery.status == "claimed", owner_dead(now, alive_s))


@dataclass(frozen=True)
class StuckDelivery:
    id: int
    subscription_id: int
    period: str
    claimed_by: str | None
    claimed_at: dt.datetime


def stuck_deliveries(session: Session, now: dt.datetime, alive_s: float = ALIVE_S) -> list[StuckDelivery]:
    """Deliveries left between send and mark by an instance that is no longer alive."""
    rows = session.execute(
        select(
            Delivery.id, Delivery.subscription_id, Delivery.period, Delivery.claimed_by, Delivery.claimed_at
        )
        .where(_stuck(now, alive_s))
        .order_by(Delivery.id)
    )
    return [StuckDelivery(*row) for row in rows]


def release_never_sent(engine: Engine, now: dt.datetime, alive_s: float = ALIVE_S) -> list[int]:
    """A dead instance's claimed deliveries that were never handed to a channel (all but the first of
    each claim, see the module docstring) become retries due now: the same papers, a first send."""
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Delivery.id, Delivery.claimed_by, Delivery.claimed_at)
            .where(_stuck(now, alive_s), Delivery.claimed_by.is_not(None))
            .order_by(Delivery.id)
        ).all()
        first: set[tuple[str, dt.datetime]] = set()
        unsent: list[int] = []
        for delivery_id, claimed_by, claimed_at in rows:
            if (claimed_by, claimed_at) in first:
                unsent.append(delivery_id)
            else:
                first.add((claimed_by, claimed_at))
        if unsent:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(unsent), Delivery.status == "claimed")
                .values(
                    status="retry",
                    attempts=Delivery.attempts - 1,  # never attempted: the retry's claim counts it
                    next_attempt_at=now,
                    last_error="never sent: the instance that claimed it died before sending it",
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    if unsent:
        log.warning("event=never_sent_released deliveries=%s", len(unsent))
    return unsent


def settle_stuck(engine: Engine, settings: Settings, now: dt.datetime) -> list[int]:
    """Apply STUCK_DELIVERY_POLICY to stuck deliveries older than the delay; the ids resent."""
    if settings.stuck_delivery_policy != "resend":
        return []
    cutoff = now - dt.timedelta(seconds=settings.stuck_delivery_delay_s)
    resent: list[int] = []
    with Session(engine) as session, session.begin():
        for stuck in stuck_deliveries(session, now, 3 * settings.heartbeat_s):
            if stuck.claimed_at <= cutoff:
                delivery = resolve_stuck(session, stuck.id, was_sent=False, now=now)
                delivery.last_error = f"resent: {stuck.claimed_by} died between sending and marking it"
                resent.append(stuck.id)
    for delivery_id in resent:
        log.warning("event=stuck_delivery_resent delivery=%s", delivery_id)
    return resent


def recover(engine: Engine, settings: Settings, now: dt.datetime) -> None:
    """What every pass does first: dead instances' claims back in the queue, stuck deliveries settled."""
    recovered = recover_claims(engine, now, 3 * settings.heartbeat_s)
    if recovered:
        log.warning("event=claims_recovered subscriptions=%s", recovered)
    release_never_sent(engine, now, 3 * settings.heartbeat_s)
    settle_stuck(engine, settings, now)
