"""schemathesis against the admin API's OpenAPI schema: generated requests find no server error and
every answer matches the schema (status codes, content types, bodies)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.models import Delivery, IngestRun, Source, utcnow
from tests.web.helpers import ADMIN_TOKEN, make_subscription

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def admin_schema(app: FastAPI, committed_engine: Engine) -> schemathesis.BaseSchema:
    """The app's schema, over a database holding one of everything (so ids 1.. often exist)."""
    ada = make_subscription(committed_engine, "ada@example.org")
    with Session(committed_engine) as session:
        session.add_all(
            [
                Source(name="feed", url="https://example.org/feed.xml"),
                IngestRun(source="drop", path="/drop/a.jsonl", status="done"),
                Delivery(subscription_id=ada.id, period="2026-W48", status="sent", sent_at=utcnow()),
            ]
        )
        session.commit()
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("admin_schema").include(path_regex="^/api/admin/")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_admin_api_has_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS)
