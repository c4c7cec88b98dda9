"""The admin JSON API: token-protected, complete OpenAPI schema, manages what it lists."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import Delivery, DeliveryPaper, IngestRun, Profile, Subscriber, Subscription, utcnow
from service.web.app import create_app
from tests.web.helpers import ADMIN_TOKEN, add_paper, make_subscription

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(client: TestClient) -> TestClient:
    client.headers.update(AUTH)
    return client


def test_the_api_needs_the_admin_token(client: TestClient) -> None:
    assert client.get("/api/admin/subscribers").status_code == 401
    wrong = client.get("/api/admin/subscribers", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/admin/subscribers", headers=AUTH).status_code == 200


def test_without_an_admin_token_configured_the_api_is_off(
    web_settings: Settings, committed_engine: Engine
) -> None:
    app = create_app(web_settings.model_copy(update={"admin_token": None}), committed_engine)
    with TestClient(app) as client:
        answer = client.get("/api/admin/subscribers", headers=AUTH)
    assert answer.status_code == 503
    assert "ADMIN_TOKEN" in answer.json()["detail"]


def test_subscribers_are_listed_filtered_updated_and_erased(
    api: TestClient, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    make_subscription(committed_engine, "bob@example.org")
    page = api.get("/api/admin/subscribers").json()
    assert page["total"] == 2 and [s["email"] for s in page["items"]] == [
        "bob@example.org",
        "ada@example.org",
    ]
    assert [
        s["email"] for s in api.get("/api/admin/subscribers", params={"email": "ADA"}).json()["items"]
    ] == ["ada@example.org"]
    assert api.get("/api/admin/subscribers", params={"limit": 1, "offset": 1}).json()["items"][0]["id"] == (
        ada.subscriber_id
    )
    changed = api.patch(
        f"/api/admin/subscribers/{ada.subscriber_id}", json={"flagged": True, "timezone": "Asia/Kolkata"}
    )
    assert changed.status_code == 200
    assert changed.json()["flagged"] is True and changed.json()["timezone"] == "Asia/Kolkata"
    assert (
        api.patch(
            f"/api/admin/subscribers/{ada.subscriber_id}", json={"timezone": "Nowhere/Land"}
        ).status_code
        == 422
    )
    assert api.delete(f"/api/admin/subscribers/{ada.subscriber_id}").status_code == 204
    assert api.get(f"/api/admin/subscribers/{ada.subscriber_id}").status_code == 404
    with Session(committed_engine) as session:  # erased with everything that was theirs
        assert session.get(Subscription, ada.id) is None
        assert session.get(Profile, ada.profile_id) is None
        assert session.scalar(select(Subscriber).where(Subscriber.email == "bob@example.org")) is not None


def test_subscriptions_are_managed_and_never_show_their_secret(
    api: TestClient, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    with Session(committed_engine) as session:
        row = session.get(Subscription, ada.id)
        assert row is not None
        row.secret = "gAAAA-encrypted-webhook-url"
        row.needs_attention = "channel_not_found"
        session.commit()
    listed = api.get("/api/admin/subscriptions", params={"status": "active"})
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert "gAAAA" not in listed.text and "secret" not in listed.json()["items"][0]
    changed = api.patch(
        f"/api/admin/subscriptions/{ada.id}",
        json={
            "cadence": "weekly",
            "weekday": 6,
            "send_time": "18:15",
            "paused": True,
            "clear_needs_attention": True,
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cadence"], body["weekday"], body["send_time"], body["paused"]) == (
        "weekly",
        6,
        "18:15",
        True,
    )
    assert body["needs_attention"] is None
    assert dt.datetime.fromisoformat(body["next_digest_at"]).weekday() == 6
    assert api.patch(f"/api/admin/subscriptions/{ada.id}", json={"cadence": "hourly"}).status_code == 422
    assert api.patch(f"/api/admin/subscriptions/{ada.id}", json={"address": "x@y.z"}).status_code == 422
    assert api.delete(f"/api/admin/subscriptions/{ada.id}").status_code == 204
    assert api.get(f"/api/admin/subscriptions/{ada.id}").status_code == 404


def test_sources_are_created_updated_and_removed(api: TestClient) -> None:
    body = {"name": "hf-daily", "url": "https://example.org/papers.json", "format": "hf_api"}
    created = api.post("/api/admin/sources", json=body)
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    assert api.post("/api/admin/sources", json=body).status_code == 409
    assert api.post("/api/admin/sources", json={**body, "name": "x", "url": "ftp://nope"}).status_code == 422
    updated = api.patch(f"/api/admin/sources/{source_id}", json={"enabled": False, "format": None})
    assert updated.json()["enabled"] is False and updated.json()["format"] is None
    assert [s["name"] for s in api.get("/api/admin/sources").json()["items"]] == ["hf-daily"]
    assert api.delete(f"/api/admin/sources/{source_id}").status_code == 204
    assert api.get(f"/api/admin/sources/{source_id}").status_code == 404


def test_ingest_runs_and_deliveries_are_listed(api: TestClient, committed_engine: Engine) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    paper = add_paper(committed_engine, "A paper")
    with Session(committed_engine) as session:
        run = IngestRun(source="drop", path="/drop/a.jsonl", status="done", new=3, errors=[{"line": 2}])
        delivery = Delivery(subscription_id=ada.id, period="2026-11-23", status="sent", sent_at=utcnow())
        delivery.papers = [
            DeliveryPaper(subscription_id=ada.id, paper_id=paper, rank=1, score=2.5, reason={"why": "x"})
        ]
        session.add_all([run, delivery])
        session.commit()
        run_id, delivery_id = run.id, delivery.id
    runs = api.get("/api/admin/ingest-runs", params={"status": "done"}).json()
    assert runs["total"] == 1 and runs["items"][0]["errors"] == [{"line": 2}]
    assert api.get(f"/api/admin/ingest-runs/{run_id}").json()["new"] == 3
    deliveries = api.get("/api/admin/deliveries", params={"subscription_id": ada.id}).json()
    assert [d["status"] for d in deliveries["items"]] == ["sent"]
    detail = api.get(f"/api/admin/deliveries/{delivery_id}").json()
    assert detail["papers"] == [{"paper_id": paper, "rank": 1, "score": 2.5, "reason": {"why": "x"}}]
    assert api.get("/api/admin/deliveries/2147483647").status_code == 404
    assert api.get("/api/admin/deliveries/2147483648").status_code == 422


def test_the_openapi_schema_describes_the_admin_api_not_the_pages(app: FastAPI) -> None:
    schema = app.openapi()
    paths = schema["paths"]
    pages = ("/subscribe", "/confirm/", "/manage/", "/unsubscribe/", "/feedback/", "/static/")
    assert "/" not in paths and not any(p.startswith(pages) for p in paths), sorted(paths)
    admin = {p for p in paths if p.startswith("/api/admin/")}
    assert {
        "/api/admin/subscribers",
        "/api/admin/subscribers/{subscriber_id}",
        "/api/admin/subscriptions",
        "/api/admin/subscriptions/{subscription_id}",
        "/api/admin/sources",
        "/api/admin/sources/{source_id}",
        "/api/admin/ingest-runs",
        "/api/admin/ingest-runs/{run_id}",
        "/api/admin/deliveries",
        "/api/admin/deliveries/{delivery_id}",
    } <= admin
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path in admin:
        for method, operation in paths[path].items():
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            if ok != "204":
                assert "$ref" in str(operation["responses"][ok]["content"]), (method, path)
    assert "secret" not in schema["components"]["schemas"]["SubscriptionOut"]["properties"]
