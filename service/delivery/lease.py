"""Only one instance runs the scheduler: a named lease row with an expiry, renewed while alive.

A lease in the `leases` table (rather than a PostgreSQL advisory lock) works the same on SQLite and
PostgreSQL, survives connection-pool churn, and shows in `paperboy status` who holds it. An instance
that dies stops renewing; once `expires_at` passes, another instance takes the lease over.

Every change is one conditional statement in its own transaction, so two instances racing for the
lease cannot both win: the database decides.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from service.models import Lease

SCHEDULER_LEASE = "scheduler"


def instance_name() -> str:
    """A name unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    expires_at: dt.datetime


def acquire(engine: Engine, name: str, holder: str, *, now: dt.datetime, ttl: dt.timedelta) -> bool:
    """Take or renew the lease `name` for `holder` until now+ttl; False when someone else holds it."""
    expires = now + ttl
    with engine.begin() as conn:
        # Renew our own lease, or take over one that has expired.
        taken = conn.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(holder=holder, expires_at=expires)
        ).rowcount
    if taken == 1:
        return True
    try:
        with engine.begin() as conn:
            conn.execute(insert(Lease).values(name=name, holder=holder, expires_at=expires))
    except IntegrityError:
        return False  # the row exists and is held by a live instance (or another one just inserted it)
    return True


def release(engine: Engine, name: str, holder: str) -> bool:
    """Give the lease up (clean shutdown), so another instance need not wait for it to expire."""
    with engine.begin() as conn:
        return conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder)).rowcount == 1


def current(engine: Engine, name: str) -> LeaseInfo | None:
    """Who holds the lease `name` now (possibly expired), for status displays."""
    with engine.connect() as conn:
        query = select(Lease.name, Lease.holder, Lease.expires_at).where(Lease.name == name)
        row = conn.execute(query).first()
    return LeaseInfo(row.name, row.holder, row.expires_at) if row else None
