"""Why did I get no email today? Every dispatch pass notes, per due subscription, what happened and
why (dispatch_notes); `paperboy why`, the manage page and the admin API read those notes back in plain
words; `paperboy status` sums up the last pass and warns about a day the ingest brought nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from service.models import DispatchNote, IngestRun, Paper, Subscription

OUTCOMES = (
    "sent",
    "nothing_new",
    "below_cutoff",
    "paused",
    "unconfirmed",
    "bounced",
    "channel_error",
    "retrying",
    "claimed_elsewhere",
    "skipped",
)
KEEP_DAYS = 30


@dataclass(frozen=True)
class Note:
    outcome: str
    period: str | None
    papers: int = 0
    best_score: float | None = None
    cutoff: float | None = None
    detail: str | None = None


def classify(outcome: object) -> Note:
    """A service.delivery DeliveryOutcome as a note: one of OUTCOMES, with what explains it."""
    status = str(getattr(outcome, "status", ""))
    period = getattr(outcome, "period", None)
    error = getattr(outcome, "error", None)
    if status == "sent":
        return Note("sent", period, papers=int(getattr(outcome, "papers", 0)))
    if status == "empty":
        candidates = getattr(outcome, "candidates", None)
        best = getattr(outcome, "best_score", None)
        if candidates:
            return Note("below_cutoff", period, best_score=best, detail=f"{candidates} new papers")
        if candidates is None:  # composed elsewhere (a worker): what it saw is not known here
            return Note("nothing_new", period, detail="no paper passed the selection")
        return Note("nothing_new", period)
    if status == "retry":
        return Note("retrying", period, detail=error)
    if status == "failed":
        return Note("channel_error", period, detail=error)
    reason = (error or "").lower()
    for needle, kind in (
        ("paused", "paused"),
        ("not confirmed", "unconfirmed"),
        ("is pending", "unconfirmed"),
        ("hard bounce", "bounced"),
        ("needs attention", "channel_error"),
        ("claimed by another", "claimed_elsewhere"),
    ):
        if needle in reason:
            return Note(kind, period, detail=error)
    return Note("skipped", period, detail=error)


def record(
    engine: Engine,
    notes: Iterable[tuple[int, Note]],
    *,
    pass_at: dt.datetime,
    at: dt.datetime,
    instance: str,
) -> None:
    """Write the notes of a pass (one INSERT), each with the subscription's cut-off (min_score)."""
    rows = list(notes)
    if not rows:
        return
    cutoffs: dict[int, float] = {}
    with engine.begin() as conn:
        ids = sorted({sid for sid, _ in rows})
        for sid, cutoff in conn.execute(
            select(Subscription.id, Subscription.min_score).where(Subscription.id.in_(ids))
        ):
            cutoffs[sid] = cutoff
        values = [
            {
                "subscription_id": sid,
                "pass_at": pass_at,
                "at": at,
                "period": note.period,
                "outcome": note.outcome,
                "papers": note.papers,
                "best_score": note.best_score,
                "cutoff": cutoffs.get(sid) if note.outcome == "below_cutoff" else None,
                "detail": (note.detail or None) and note.detail[:2000],  # type: ignore[index]
                "instance": instance,
            }
            for sid, note in rows
            if sid in cutoffs
        ]
        if values:
            conn.execute(insert(DispatchNote), values)


def prune(session: Session, now: dt.datetime, keep_days: int = KEEP_DAYS) -> int:
    from sqlalchemy import delete

    result = session.execute(delete(DispatchNote).where(DispatchNote.at < now - dt.timedelta(days=keep_days)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- reading notes back --------------------------------------------------------------------------


def in_words(note: DispatchNote | Note) -> str:
    """One plain sentence for a reader or an operator."""
    outcome = note.outcome
    if outcome == "sent":
        return f"Sent: a digest of {note.papers} paper{'s' if note.papers != 1 else ''}."
    if outcome == "nothing_new":
        return "No email: no new paper since your last digest."
    if outcome == "below_cutoff":
        best = f"{note.best_score:.2f}" if note.best_score is not None else "unknown"
        cutoff = f"{note.cutoff:.2f}" if note.cutoff is not None else "your cut-off"
        extra = f" ({note.detail})" if note.detail else ""
        return f"No email: new papers{extra}, but none scored above the cut-off {cutoff} (best {best})."
    if outcome == "paused":
        return "No email: the subscription is paused."
    if outcome == "unconfirmed":
        return "No email: the address is not confirmed yet (follow the link in the confirmation email)."
    if outcome == "bounced":
        return f"No email: the address bounced too often ({note.detail})."
    if outcome == "channel_error":
        return f"No email: the channel failed ({note.detail})."
    if outcome == "retrying":
        return f"Not sent yet: the channel failed for now and it will be tried again ({note.detail})."
    if outcome == "claimed_elsewhere":
        return "Handled by another paperboy instance in the same pass."
    return f"Nothing sent: {note.detail or 'skipped'}."


def notes_for(
    session: Session, subscription_id: int, *, since: dt.datetime, until: dt.datetime | None = None
) -> list[DispatchNote]:
    stmt = (
        select(DispatchNote)
        .where(DispatchNote.subscription_id == subscription_id, DispatchNote.at >= since)
        .order_by(DispatchNote.at.desc(), DispatchNote.id.desc())
    )
    if until is not None:
        stmt = stmt.where(DispatchNote.at < until)
    return list(session.scalars(stmt))


def recent_lines(
    session: Session, subscription: Subscription, now: dt.datetime, days: int = 7
) -> list[dict[str, str]]:
    """The last `days` days of notes for a reader: local time, period, plain words; newest first."""
    zone = ZoneInfo(subscription.timezone)
    notes = notes_for(session, subscription.id, since=now - dt.timedelta(days=days))
    return [
        {"when": f"{n.at.astimezone(zone):%a %d %b %H:%M}", "outcome": n.outcome, "text": in_words(n)}
        for n in notes
        if n.outcome != "claimed_elsewhere"  # an instance detail, not the reader's business
    ]


def local_day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def explain_day(session: Session, subscription: Subscription, day: dt.date) -> list[str]:
    """What happened to the subscription on its local `day`, in plain words (newest first); with no
    note that day, why nothing was due."""
    start, end = local_day_bounds(day, subscription.timezone)
    notes = notes_for(session, subscription.id, since=start, until=end)
    if notes:
        zone = ZoneInfo(subscription.timezone)
        return [f"{n.at.astimezone(zone):%H:%M} {n.period or ''}: {in_words(n)}" for n in notes]
    if subscription.status == "unsubscribed":
        return ["No email: the subscription was ended (unsubscribed)."]
    if subscription.paused:
        return [in_words(Note("paused", None))]
    if subscription.status == "pending":
        return [in_words(Note("unconfirmed", None))]
    if subscription.needs_attention:
        return [in_words(Note("channel_error", None, detail=subscription.needs_attention))]
    if subscription.subscriber is not None and subscription.subscriber.flagged:
        return [
            in_words(Note("bounced", None, detail=f"{subscription.subscriber.hard_bounces} hard bounces"))
        ]
    when = subscription.next_digest_at
    nxt = (
        f"; the next one is due {when.astimezone(ZoneInfo(subscription.timezone)):%a %d %b %H:%M}"
        if when
        else ""
    )
    return [f"No digest was due that day ({subscription.cadence}){nxt}."]


# --- status --------------------------------------------------------------------------------------


def last_pass_summary(session: Session) -> tuple[dt.datetime | None, dict[str, int]]:
    """(when the last pass started, its notes counted by outcome)."""
    last = session.scalar(select(func.max(DispatchNote.pass_at)))
    if last is None:
        return None, {}
    counts = Counter(
        dict(
            session.execute(  # type: ignore[arg-type]
                select(DispatchNote.outcome, func.count())
                .where(DispatchNote.pass_at == last)
                .group_by(DispatchNote.outcome)
            ).all()
        )
    )
    return last, {k: counts[k] for k in OUTCOMES if counts.get(k)}


def quiet_ingest_warning(session: Session, now: dt.datetime, days: int = 7) -> str | None:
    """A warning when today's ingest runs brought 0 new papers although the previous `days` days
    usually brought some (a broken feed or an empty dump, seen before readers notice)."""
    today = dt.datetime.combine(now.date(), dt.time(0), tzinfo=dt.UTC)
    runs_today = session.scalar(
        select(func.count()).select_from(IngestRun).where(IngestRun.started_at >= today)
    )
    if not runs_today:
        return None
    new_today = (
        session.scalar(select(func.count()).select_from(Paper).where(Paper.first_seen_at >= today)) or 0
    )
    if new_today:
        return None
    before = (
        session.scalar(
            select(func.count())
            .select_from(Paper)
            .where(Paper.first_seen_at >= today - dt.timedelta(days=days), Paper.first_seen_at < today)
        )
        or 0
    )
    if before == 0:
        return None
    return (
        f"today's ingest brought 0 new papers ({runs_today} runs), while the last {days} days brought "
        f"{before / days:.0f} a day on average: check the sources and the drop folder"
    )


def summary_lines(session: Session, now: dt.datetime) -> Sequence[str]:
    started, counts = last_pass_summary(session)
    lines = []
    if started is not None:
        parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) or "nothing due"
        lines.append(f"last dispatch pass {started:%Y-%m-%d %H:%M} UTC: {parts}")
    warning = quiet_ingest_warning(session, now)
    if warning:
        lines.append(f"warning: {warning}")
    return lines
