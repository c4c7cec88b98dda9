"""What the fuzzing campaign (bench/fuzz.py) found: digits that str.isdigit accepts and int refuses
("²", "¹") crashed the forms with a 500."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.datastructures import FormData

from service.config import Settings
from service.links import manage_url
from service.subscription import SubscriptionError, parse_weekday
from service.web.forms import parse_subscribe
from tests.web.helpers import csrf_of, make_subscription

SUPERSCRIPTS = ["¹", "8³", "²"]


def test_the_subscribe_form_reads_superscript_digits_as_bad_input() -> None:
    for value in SUPERSCRIPTS:
        data, _ = parse_subscribe(
            FormData([("weekday", value), ("email", "a@example.org"), ("keywords", "x")])
        )
        assert data.weekday == 0


def test_a_weekday_in_superscript_is_a_subscription_error() -> None:
    for value in SUPERSCRIPTS:
        with pytest.raises(SubscriptionError, match="weekday"):
            parse_weekday(value)


def test_the_manage_form_answers_superscript_numbers_without_a_500(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    url = urlsplit(manage_url(ada.subscriber_id or 0, ada.id, web_settings)).path
    token = csrf_of(client.get(url).text)
    for field in ("interest_count", "max_papers", "interest-0-id", "weekday", "interest-0-seed"):
        form = {"csrf_token": token, "interest_count": "1", "interest-0-keywords": "x", field: "¹"}
        for path in (url, url + "/preview"):
            assert client.post(path, data=form, follow_redirects=False).status_code < 500, (field, path)


def test_a_non_ascii_csrf_token_is_refused_not_a_500(client: TestClient) -> None:
    # hmac.compare_digest refuses str with non-ASCII characters (TypeError): the fuzzer's 500.
    client.get("/")
    answer = client.post("/subscribe", data={"csrf_token": "ûZ", "email": "a@example.org", "keywords": "x"})
    assert answer.status_code == 403
