"""Choosing a digest's papers: the window, never a paper twice, min_score, max_papers, topic, links."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.compose import compose_digest, digest_from_record, digest_topic, item_record
from service.models import Delivery, DeliveryPaper, Subscription
from service.tokens import read_token
from tests.digest.helpers import NOW, add_paper, add_subscription, keyword_ranker

HOUR = dt.timedelta(hours=1)


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, base_url="https://paperboy.example", **kw)  # type: ignore[arg-type]


def _compose(db: Session, sub_id: int, period: str = "2026-11-23", **kw: object):  # type: ignore[no-untyped-def]
    sub = db.get_one(Subscription, sub_id)
    return compose_digest(db, sub, period, now=NOW, settings=_settings(**kw), ranker=keyword_ranker)


def _delivery(
    db: Session, sub_id: int, period: str, status: str, created: dt.datetime, papers=()
) -> Delivery:  # type: ignore[no-untyped-def]
    d = Delivery(subscription_id=sub_id, period=period, status=status, created_at=created)
    db.add(d)
    db.flush()
    for rank, paper in enumerate(papers, start=1):
        db.add(
            DeliveryPaper(delivery_id=d.id, subscription_id=sub_id, paper_id=paper.id, rank=rank, score=1.0)
        )
    db.flush()
    return d


def test_first_digest_looks_back_the_configured_window(db: Session) -> None:
    sub = add_subscription(db, "a@example.org", "sparse attention")
    inside = add_paper(db, "arxiv:1", "Sparse attention at scale", seen=NOW - dt.timedelta(days=6))
    add_paper(db, "arxiv:2", "Sparse attention, old", seen=NOW - dt.timedelta(days=8))
    add_paper(db, "arxiv:3", "Sparse attention from the future", seen=NOW + HOUR)
    add_paper(db, "arxiv:4", "Graph neural networks", seen=NOW - HOUR)
    digest = _compose(db, sub)
    assert [i.paper_id for i in digest.items] == [inside.id]
    assert _compose(db, sub, digest_lookback_days=10).items[0].paper_id == inside.id
    assert len(_compose(db, sub, digest_lookback_days=10).items) == 2


def test_later_digests_hold_only_papers_since_the_last_one(db: Session) -> None:
    sub = add_subscription(db, "a@example.org", "sparse attention")
    old = add_paper(db, "arxiv:1", "Sparse attention one", seen=NOW - 30 * HOUR)
    new = add_paper(db, "arxiv:2", "Sparse attention two", seen=NOW - 2 * HOUR)
    _delivery(db, sub, "2026-11-22", "sent", NOW - 24 * HOUR)
    assert [i.paper_id for i in _compose(db, sub).items] == [new.id]
    # A failed delivery released its papers: its window is offered again.
    _delivery(db, sub, "2026-11-23-x", "failed", NOW - HOUR)
    assert [i.paper_id for i in _compose(db, sub).items] == [new.id]
    assert old.id not in [i.paper_id for i in _compose(db, sub).items]


def test_a_paper_already_in_a_digest_never_comes_back(db: Session) -> None:
    sub = add_subscription(db, "a@example.org", "sparse attention")
    sent = add_paper(db, "arxiv:1", "Sparse attention one", seen=NOW - 2 * HOUR)
    fresh = add_paper(db, "arxiv:2", "Sparse attention two", seen=NOW - 2 * HOUR)
    # Recorded by an earlier delivery whose window ended before the paper's (re-)ingest time.
    _delivery(db, sub, "2026-11-22", "sent", NOW - 24 * HOUR, papers=[sent])
    assert [i.paper_id for i in _compose(db, sub).items] == [fresh.id]
    other = add_subscription(db, "b@example.org", "sparse attention")
    assert {i.paper_id for i in _compose(db, other).items} == {sent.id, fresh.id}


def test_min_score_and_max_papers_cut_the_ranked_list(db: Session) -> None:
    sub_id = add_subscription(db, "a@example.org", "sparse attention", max_papers=2)
    sub = db.get_one(Subscription, sub_id)
    sub.profile.interests[0].keywords = "sparse attention, kv cache"
    papers = [
        add_paper(db, "arxiv:1", "Sparse attention only"),
        add_paper(db, "arxiv:2", "Sparse attention with a kv cache"),
        add_paper(db, "arxiv:3", "A kv cache trick"),
        add_paper(db, "arxiv:4", "Sparse attention and kv cache again"),
    ]
    db.flush()
    digest = _compose(db, sub_id)
    assert [i.paper_id for i in digest.items] == [papers[1].id, papers[3].id]
    assert [i.score for i in digest.items] == [1.0, 1.0]
    sub.max_papers, sub.min_score = 10, 0.9
    assert len(_compose(db, sub_id).items) == 2
    sub.min_score = 0.0
    assert len(_compose(db, sub_id).items) == 4


def test_a_ranker_cannot_add_papers_that_were_not_candidates(db: Session) -> None:
    sub = add_subscription(db, "a@example.org", "sparse attention")
    sent = add_paper(db, "arxiv:1", "Sparse attention one")
    _delivery(db, sub, "2026-11-22", "sent", NOW - 24 * HOUR, papers=[sent])

    def sloppy(session, profile, papers, *, interests):  # type: ignore[no-untyped-def]
        return keyword_ranker(session, profile, [*papers, sent], interests=interests)

    subscription = db.get_one(Subscription, sub)
    digest = compose_digest(db, subscription, "p", now=NOW, settings=_settings(), ranker=sloppy)
    assert digest.items == []


def test_topic_names_the_matched_interests(db: Session) -> None:
    sub_id = add_subscription(db, "a@example.org", "sparse attention", "kv cache", "speculative decoding")
    add_paper(db, "arxiv:1", "Sparse attention", upvotes=3)
    add_paper(db, "arxiv:2", "A kv cache")
    sub = db.get_one(Subscription, sub_id)
    digest = _compose(db, sub_id)
    assert digest.topic in ("sparse attention and kv cache", "kv cache and sparse attention")
    assert digest_topic(sub, []) == "sparse attention, kv cache and 1 more"


def test_links_are_signed_for_their_purpose_and_subscriber(db: Session) -> None:
    sub_id = add_subscription(db, "a@example.org", "sparse attention")
    paper = add_paper(db, "arxiv:1", "Sparse attention")
    digest = _compose(db, sub_id)
    sub = db.get_one(Subscription, sub_id)
    settings = _settings()
    token = digest.links.unsubscribe.rsplit("/", 1)[-1]
    claims = read_token("unsubscribe", token, settings=settings)
    assert (claims.subscriber_id, claims.subscription_id) == (sub.subscriber_id, sub_id)
    assert digest.links.unsubscribe.startswith("https://paperboy.example/unsubscribe/")
    relevant, not_relevant = digest.links.feedback[paper.id]
    assert read_token("feedback", relevant.rsplit("/", 1)[-1], settings=settings).extra == {
        "paper": paper.id,
        "relevant": True,
    }
    assert (
        read_token("feedback", not_relevant.rsplit("/", 1)[-1], settings=settings).extra["relevant"] is False
    )


def test_a_recorded_delivery_rebuilds_the_same_items(db: Session) -> None:
    sub_id = add_subscription(db, "a@example.org", "sparse attention")
    add_paper(db, "arxiv:1", "Sparse attention", "We study sparse attention.", upvotes=5, organization="ACME")
    add_paper(
        db, "arxiv:2", "More sparse attention", published_on=dt.date(2026, 11, 20), code_url="https://g/x"
    )
    digest = _compose(db, sub_id)
    delivery = Delivery(subscription_id=sub_id, period="2026-11-23", status="retry", created_at=NOW)
    db.add(delivery)
    db.flush()
    for rank, item in enumerate(digest.items, start=1):
        db.add(
            DeliveryPaper(
                delivery_id=delivery.id,
                subscription_id=sub_id,
                paper_id=item.paper_id,
                rank=rank,
                score=item.score,
                reason=item_record(item),
            )
        )
    db.flush()
    sub = db.get_one(Subscription, sub_id)
    rebuilt = digest_from_record(db, sub, delivery, now=NOW, settings=_settings())
    assert rebuilt.items == digest.items
    assert rebuilt.topic == digest.topic
