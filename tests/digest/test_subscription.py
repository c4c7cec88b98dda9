"""Subscribers and subscriptions: validation with clear errors, create, confirm, unsubscribe."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from service.subscription import (
    SubscriptionError,
    SubscriptionRequest,
    confirm_subscriber,
    create_subscription,
    list_subscriptions,
    normalise_email,
    unsubscribe,
    unsubscribe_all,
)


def test_addresses_are_normalised_or_refused_with_the_reason() -> None:
    assert normalise_email("  Ada@Example.ORG ") == "ada@example.org"
    assert normalise_email("zoe@bücher.example") == "zoe@xn--bcher-kva.example"
    for bad, reason in [
        ("", "required"),
        ("no-at-sign", "@-sign"),
        ("a@b", "after the @-sign"),
        ("a b@example.org", "invalid characters"),
        ("zoë@example.org", "Internationalized"),
        ("x@example.org\r\nBcc: y@example.org", "invalid characters"),
    ]:
        with pytest.raises(SubscriptionError) as error:
            normalise_email(bad)
        assert str(error.value).startswith("email: ")
        assert reason in str(error.value)


def test_create_subscription_builds_subscriber_profile_and_interests(db: Session) -> None:
    request = SubscriptionRequest(
        email="Ada@Example.org",
        interests=["sparse  attention", "kv cache"],
        query='"speculative decoding" AND draft*',
        cadence="weekly",
        weekday="Fri",
        send_time="07:30",
        timezone="Europe/Paris",
        max_papers=5,
    )
    sub = create_subscription(db, request)
    assert (
        sub.subscriber is not None and sub.subscriber.email == "ada@example.org" and sub.subscriber.verified
    )
    assert (sub.status, sub.cadence, sub.weekday, sub.send_time) == ("active", "weekly", 4, dt.time(7, 30))
    # The query filters the interests it came with: no separate interest named "query".
    assert sub.interests == ["sparse attention", "kv cache"]
    profile = sub.profile
    assert profile.name == "email:ada@example.org"
    assert [(i.name, i.keywords, i.query) for i in profile.interests] == [
        ("sparse attention", "sparse attention", '"speculative decoding" AND draft*'),
        ("kv cache", "kv cache", '"speculative decoding" AND draft*'),
    ]
    # A second subscription of the same address shares the profile and adds only new interests.
    again = create_subscription(
        db, SubscriptionRequest(email="ada@example.org", interests=["kv cache", "moe"])
    )
    assert again.profile_id == sub.profile_id and again.subscriber_id == sub.subscriber_id
    assert [i.name for i in again.profile.interests][-1] == "moe"
    assert [s.id for s in list_subscriptions(db, email="ADA@example.org")] == [sub.id, again.id]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cadence": "hourly"}, "schedule"),
        ({"cadence": "weekly"}, "weekday"),
        ({"cadence": "weekly", "weekday": "someday"}, "weekday"),
        ({"weekday": 9}, "weekday"),
        ({"timezone": "Mars/Olympus"}, "schedule"),
        ({"send_time": "25:00"}, "send time"),
        ({"interests": []}, "interests"),
        ({"interests": ["x" * 201]}, "interest"),
        ({"max_papers": 0}, "max papers"),
        ({"channel": "fax"}, "channel"),
        ({"email": "nobody"}, "email"),
    ],
)
def test_bad_requests_name_the_field(db: Session, change: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"email": "a@example.org", "interests": ["x"], **change}
    with pytest.raises(SubscriptionError) as error:
        create_subscription(db, SubscriptionRequest(**fields))  # type: ignore[arg-type]
    assert str(error.value).startswith(field + ":"), str(error.value)


def test_double_opt_in_and_unsubscribing(db: Session) -> None:
    sub = create_subscription(
        db, SubscriptionRequest(email="b@example.org", interests=["moe"], verified=False)
    )
    assert sub.status == "pending" and sub.subscriber is not None and not sub.subscriber.verified
    assert [s.id for s in confirm_subscriber(db, sub.subscriber.id)] == [sub.id]
    assert sub.status == "active" and sub.subscriber.verified
    other = create_subscription(db, SubscriptionRequest(email="c@example.org", interests=["moe"]))
    with pytest.raises(SubscriptionError):
        unsubscribe(db, sub.id, subscriber_id=other.subscriber_id)  # a token for another subscriber
    assert sub.status == "active"
    assert unsubscribe(db, sub.id, subscriber_id=sub.subscriber_id).status == "unsubscribed"
    assert list_subscriptions(db, email="b@example.org") == []
    assert [s.id for s in list_subscriptions(db, email="b@example.org", include_unsubscribed=True)] == [
        sub.id
    ]
    assert [s.id for s in unsubscribe_all(db, "C@example.org")] == [other.id]
    with pytest.raises(SubscriptionError):
        unsubscribe(db, 10**9)
