"""Finding 8: the CSRF cookie is issued by the server only, __Host- under https, and cross-origin
POSTs are refused; the one-click unsubscribe POST stays exempt."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from service.config import Settings
from service.links import unsubscribe_url
from service.web.app import create_app
from tests.security.conftest import SECRET
from tests.web.helpers import csrf_of, make_subscription

PLANTED = "A" * 43  # what an attacker on a sibling subdomain (or a MITM on http) can set


def _settings(database_url: str, tmp_path: Path, base_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET,  # type: ignore[arg-type]
        base_url=base_url,
    )


@pytest.fixture
def site(serve: Callable[[object], str], database_url: str, committed_engine: Engine, tmp_path: Path) -> str:
    app = create_app(_settings(database_url, tmp_path, "http://testserver"), committed_engine)
    return serve(app)


def _form(token: str, email: str = "ada@example.org") -> dict[str, str]:
    return {
        "csrf_token": token,
        "email": email,
        "keywords": "sparse attention",
        "cadence": "daily",
        "weekday": "0",
        "send_time": "08:00",
        "timezone": "UTC",
    }


def test_a_planted_cookie_is_replaced_and_its_token_refused(site: str) -> None:
    # The attacker gets the token that goes with the planted value...
    with httpx.Client(base_url=site, cookies={"paperboy_csrf": PLANTED}) as attacker:
        page = attacker.get("/")
        issued = page.cookies.get("paperboy_csrf")
        assert issued and issued != PLANTED, "the server kept a cookie it did not issue"
        token = csrf_of(page.text)
    # ...and a victim whose browser carries the planted cookie submits it: refused.
    with httpx.Client(base_url=site, cookies={"paperboy_csrf": PLANTED}) as victim:
        answer = victim.post("/subscribe", data=_form(token))
        assert answer.status_code == 403


def test_a_cross_origin_post_is_refused_and_a_same_origin_one_accepted(site: str) -> None:
    with httpx.Client(base_url=site) as browser:
        token = csrf_of(browser.get("/").text)
        evil = browser.post("/subscribe", data=_form(token), headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        null = browser.post("/subscribe", data=_form(token), headers={"Origin": "null"})
        assert null.status_code == 403
        referer = browser.post(
            "/subscribe", data=_form(token), headers={"Referer": "https://evil.example/page"}
        )
        assert referer.status_code == 403
        ours = browser.post("/subscribe", data=_form(token), headers={"Origin": "http://testserver"})
        assert ours.status_code == 200, ours.text
        assert "Check your inbox" in ours.text
        # Our own pages ask browsers to send the origin on same-origin requests (never a path).
        assert ours.headers["referrer-policy"] == "same-origin"


def test_the_one_click_unsubscribe_needs_no_cookie_and_no_origin(
    site: str, committed_engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    settings = _settings(database_url, tmp_path, "http://testserver")
    path = urlsplit(unsubscribe_url(ada.subscriber_id, ada.id, settings)).path
    answer = httpx.post(
        site + path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Origin": "https://mail.example", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200


def test_under_https_the_cookie_is_host_prefixed_and_secure(
    serve: Callable[[object], str], database_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    site = serve(create_app(_settings(database_url, tmp_path, "https://paperboy.example"), committed_engine))
    header = httpx.get(site + "/").headers["set-cookie"]
    assert re.match(r"__Host-paperboy_csrf=", header), header
    assert "Secure" in header and "Path=/" in header and "Domain" not in header
