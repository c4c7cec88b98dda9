"""Why no email today: every dispatch pass notes what it did with each due subscription and why;
`paperboy why`, the manage page, the admin API and `paperboy status` read it back (SQLite and
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from service.clock import ManualClock
from service.config import Settings
from service.db import session_scope
from service.delivery.dispatch import run_dispatch
from service.links import manage_url
from service.models import IngestRun, Subscriber, Subscription, utcnow
from service.why import quiet_ingest_warning
from tests.cli import run_cli
from tests.digest.helpers import add_paper, add_subscription, keyword_ranker
from tests.web.helpers import ADMIN_TOKEN

# Two days ago at 06:00 UTC: the notes fall within the manage page's last 7 days.
BASE = (utcnow() - dt.timedelta(days=2)).replace(hour=6, minute=0, second=0, microsecond=0)


def _setup(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        add_paper(
            session,
            "arxiv:why1",
            "Sparse attention kernels",
            "sparse attention",
            seen=BASE - dt.timedelta(hours=1),
        )
        ids = {
            "sent": add_subscription(session, "ada@example.org", "sparse attention", send_time="07:00"),
            "cutoff": add_subscription(
                session, "bob@example.org", "sparse attention", send_time="07:00", min_score=5.0
            ),
            "paused": add_subscription(session, "carol@example.org", "sparse attention", send_time="07:00"),
            "pending": add_subscription(
                session, "dan@example.org", "sparse attention", send_time="07:00", verified=False
            ),
        }
        session.execute(update(Subscription).where(Subscription.id == ids["paused"]).values(paused=True))
        # Scheduled from the test's clock (two days ago), not from the real time of their creation.
        session.execute(update(Subscription).values(next_digest_at=None))
    return ids


def _passes(engine: Engine, settings: Settings) -> None:
    clock = ManualClock(BASE)
    run_dispatch(engine, settings, clock, instance="test", ranker=keyword_ranker)  # schedules
    clock.advance(dt.timedelta(hours=1, minutes=30))
    first = run_dispatch(engine, settings, clock, instance="test", ranker=keyword_ranker)
    assert {o.status for o in first.outcomes} == {"sent", "empty"}
    clock.advance(dt.timedelta(days=1))
    run_dispatch(engine, settings, clock, instance="test", ranker=keyword_ranker)


def test_why_says_what_each_pass_did_in_plain_words(cli_env: Engine) -> None:
    from service.config import get_settings

    ids = _setup(cli_env)
    _passes(cli_env, get_settings())
    day = BASE.date().isoformat()

    code, out = run_cli("why", str(ids["sent"]), "--date", day)
    assert code == 0 and "Sent: a digest of 1 paper." in out
    code, out = run_cli("why", "bob@example.org", "--date", day)
    assert "none scored above the cut-off 5.00 (best 1.00)" in out and "1 new papers" in out
    next_day = (BASE + dt.timedelta(days=1)).date().isoformat()
    code, out = run_cli("why", str(ids["sent"]), "--date", next_day)
    assert "No email: no new paper since your last digest." in out
    code, out = run_cli("why", "carol@example.org", "--date", day)
    assert "the subscription is paused" in out
    code, out = run_cli("why", str(ids["pending"]), "--date", day)
    assert "not confirmed yet" in out
    code, out = run_cli("why", "nobody@example.org")
    assert code == 2 and "no subscription" in out
    code, out = run_cli("why", str(ids["sent"]), "--date", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in out

    code, out = run_cli("status")
    assert code == 0 and "last dispatch pass:" in out and "nothing new=2" in out


def test_the_manage_page_and_admin_api_show_the_last_7_days(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    ids = _setup(committed_engine)
    _passes(committed_engine, web_settings)
    with session_scope(committed_engine) as session:
        owner = session.get(Subscription, ids["cutoff"]).subscriber_id  # type: ignore[union-attr]
    page = client.get(re.sub(r"^https?://[^/]+", "", manage_url(owner, ids["cutoff"], web_settings)))  # type: ignore[arg-type]
    assert "Your last 7 days" in page.text
    assert "none scored above the cut-off 5.00 (best 1.00)" in page.text
    assert "no new paper since your last digest" in page.text

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    notes = client.get(f"/api/admin/subscriptions/{ids['cutoff']}/why", headers=auth).json()
    assert [n["outcome"] for n in notes] == ["nothing_new", "below_cutoff"]
    assert notes[1]["best_score"] == 1.0 and notes[1]["cutoff"] == 5.0


def test_a_quiet_ingest_day_is_a_warning(db: Session) -> None:
    now = utcnow()
    assert quiet_ingest_warning(db, now) is None  # no ingest at all today: nothing to say
    for days in range(1, 4):
        add_paper(db, f"arxiv:q{days}", f"Paper {days}", seen=now - dt.timedelta(days=days))
    db.add(IngestRun(source="drop", path="/drop/today.jsonl", status="done", started_at=now))
    db.flush()
    warning = quiet_ingest_warning(db, now)
    assert warning and "brought 0 new papers" in warning
    add_paper(db, "arxiv:today", "Paper today", seen=now)
    assert quiet_ingest_warning(db, now) is None


def test_a_flagged_address_is_explained(db: Session) -> None:
    from service.why import explain_day

    sub = db.get(Subscription, add_subscription(db, "eve@example.org", "kv cache"))
    assert sub is not None and sub.subscriber is not None
    db.execute(
        update(Subscriber).where(Subscriber.id == sub.subscriber_id).values(flagged=True, hard_bounces=3)
    )
    db.refresh(sub.subscriber)
    assert "bounced too often (3 hard bounces)" in explain_day(db, sub, utcnow().date())[0]
