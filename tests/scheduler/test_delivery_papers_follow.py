"""A delivery's papers go with it however it is deleted, on both backends (on PostgreSQL by the
deliveries_deleted trigger of migration dbsink_1, on SQLite by the foreign key)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from service.models import Delivery, DeliveryPaper, Paper, Profile, Subscriber, Subscription

NOW = dt.datetime(2026, 11, 29, 8, tzinfo=dt.UTC)


def _delivery_with_papers(db: Session, email: str, papers: list[Paper]) -> Delivery:
    subscriber = Subscriber(email=email)
    profile = Profile(name=email)
    db.add_all([subscriber, profile])
    db.flush()
    sub = Subscription(subscriber_id=subscriber.id, profile_id=profile.id, channel="email", address=email)
    db.add(sub)
    db.flush()
    delivery = Delivery(subscription_id=sub.id, period="2026-11-29", status="sent")
    db.add(delivery)
    db.flush()
    db.execute(
        DeliveryPaper.__table__.insert(),
        [
            {
                "delivery_id": delivery.id,
                "subscription_id": sub.id,
                "paper_id": paper.id,
                "rank": rank,
                "score": 1.0,
                "reason": {},
                "paper_seen_at": NOW,
            }
            for rank, paper in enumerate(papers, start=1)
        ],
    )
    return delivery


def _papers_of(db: Session, delivery_id: int) -> int:
    return db.scalar(select(func.count()).where(DeliveryPaper.delivery_id == delivery_id)) or 0


def test_deleting_deliveries_deletes_their_papers_and_no_others(db: Session) -> None:
    papers = [Paper(key=f"follow:{n}", title=f"Paper {n}", first_seen_at=NOW) for n in range(3)]
    db.add_all(papers)
    db.flush()
    gone = _delivery_with_papers(db, "gone@example.org", papers)
    kept = _delivery_with_papers(db, "kept@example.org", papers[:2])
    assert (_papers_of(db, gone.id), _papers_of(db, kept.id)) == (3, 2)

    db.execute(delete(Delivery).where(Delivery.id == gone.id))
    assert (_papers_of(db, gone.id), _papers_of(db, kept.id)) == (0, 2)


def test_deleting_a_subscription_deletes_its_deliveries_papers(db: Session) -> None:
    papers = [Paper(key=f"follow-sub:{n}", title=f"Paper {n}", first_seen_at=NOW) for n in range(2)]
    db.add_all(papers)
    db.flush()
    delivery = _delivery_with_papers(db, "leaving@example.org", papers)
    db.execute(text("DELETE FROM subscriptions WHERE id = :id"), {"id": delivery.subscription_id})
    assert _papers_of(db, delivery.id) == 0
