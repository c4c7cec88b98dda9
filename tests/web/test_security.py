"""Security headers everywhere, no inline script or style, no secret or other subscriber in a page."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.config import Settings
from service.digest.model import DigestItem, Segment
from service.links import feedback_url, manage_url, unsubscribe_url
from service.web.preferences import Preview
from tests.web.helpers import ADMIN_TOKEN, SECRET, add_paper, make_subscription, subscribe_form


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style attributes and blocks, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self._in_script = "src" not in names
        if tag == "style":
            self.problems.append("<style> block")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        self.problems += [f"{n} handler on <{tag}>" for n in names if n.startswith("on")]
        for name, value in attrs:
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in <{tag}>")
            external = (value or "").startswith(("http://", "https://", "//"))
            if name in {"href", "src"} and external and tag in {"script", "link", "img"}:
                self.problems.append(f"external asset {value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script")


@pytest.fixture
def pages(client: TestClient, web_settings: Settings, committed_engine: Engine) -> dict[str, str]:
    """Every page paperboy shows, by name -> path."""
    ada = make_subscription(committed_engine, "ada@example.org")
    paper = add_paper(
        committed_engine,
        'Attention <script>alert("x")</script> please',
        url="javascript:alert(1)",
        arxiv_id="2401.00001",
    )
    sid = ada.subscriber_id or 0
    return {
        "subscribe": "/",
        "manage": urlsplit(manage_url(sid, ada.id, web_settings)).path,
        "unsubscribe": urlsplit(unsubscribe_url(sid, ada.id, web_settings)).path,
        "feedback": urlsplit(feedback_url(ada.id, paper, True, web_settings)).path,
        "not found": "/no/such/page",
        "bad link": "/manage/forged.token.here",
    }


def test_every_page_sends_the_security_headers(client: TestClient, pages: dict[str, str]) -> None:
    for name, path in [
        *pages.items(),
        ("stylesheet", "/static/paperboy.css"),
        ("script", "/static/paperboy.js"),
    ]:
        answer = client.get(path)
        csp = answer.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, name
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp, name
        assert "unsafe-inline" not in csp, name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["referrer-policy"] == "same-origin", name  # tokens stay on our site
        assert answer.headers["x-content-type-options"] == "nosniff", name
    assert client.get(pages["manage"]).headers["cache-control"] == "no-store"


def test_pages_hold_no_inline_script_style_or_external_asset(
    client: TestClient, pages: dict[str, str]
) -> None:
    for name, path in pages.items():
        finder = _InlineFinder()
        finder.feed(client.get(path).text)
        assert finder.problems == [], name


def test_paper_text_is_escaped_and_unsafe_links_dropped(
    client: TestClient, pages: dict[str, str], committed_engine: Engine
) -> None:
    answer = client.get(pages["feedback"])
    assert "<script>alert" not in answer.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in answer.text


def test_no_secret_appears_in_any_page(client: TestClient, pages: dict[str, str]) -> None:
    for path in pages.values():
        text = client.get(path).text
        assert SECRET not in text
        assert ADMIN_TOKEN not in text


def test_the_manage_page_shows_only_its_own_subscriber(
    client: TestClient, web_settings: Settings, committed_engine: Engine, pages: dict[str, str]
) -> None:
    make_subscription(committed_engine, "bob@example.org", interests=("protein folding",))
    text = client.get(pages["manage"]).text
    assert "bob@example.org" not in text and "protein folding" not in text
    assert re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text) == ["ada@example.org"]


def test_the_api_answers_json_errors_and_pages_answer_html(client: TestClient) -> None:
    api = client.get("/api/admin/nothing-here", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text


def test_the_interactive_api_docs_are_not_served(client: TestClient) -> None:
    # Swagger UI and ReDoc pull scripts from a CDN; the schema itself is served.
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_the_rate_limit_table_keeps_no_address(client: TestClient, committed_engine: Engine) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from service.models import RateLimitHit

    client.post("/subscribe", data=subscribe_form(client, email="private@example.org"))
    with Session(committed_engine) as session:
        buckets = list(session.scalars(select(RateLimitHit.bucket)))
    assert len(buckets) == 3  # per IP, per address an hour, per address a day
    assert not any("private" in b for b in buckets)


def test_the_preview_escapes_paper_text_and_drops_unsafe_links(app: FastAPI) -> None:
    """The preview fragment as the ranker's items fill it: text escaped, matches marked, http(s) only."""
    item = DigestItem(
        paper_id=1,
        title='<img src=x onerror="alert(1)">Sparse attention',
        url="javascript:alert(1)",
        authors=["A. Author", "B. Author", "C. Author", "D. Author"],
        author_count=4,
        organization="Lab <b>X</b>",
        published_on=dt.date(2026, 11, 20),
        upvotes=12,
        code_url=None,
        score=3.5,
        why="matched 'sparse attention'",
        snippet=[Segment("We study "), Segment("sparse attention", hit=True), Segment(" <script>x</script>")],
    )
    safe = replace(item, paper_id=2, title="Linked paper", url="https://arxiv.org/abs/2401.01234")
    template = app.state.templates.env.get_template("web/_preview.html.j2")
    html = template.render(preview=Preview(items=[item, safe], paper_count=9))
    finder = _InlineFinder()
    finder.feed(html)
    assert finder.problems == []
    assert "&lt;img src=x" in html and "&lt;script&gt;" in html and "Lab &lt;b&gt;X&lt;/b&gt;" in html
    assert "<mark>sparse attention</mark>" in html
    assert "javascript:" not in html
    assert 'href="https://arxiv.org/abs/2401.01234"' in html
    assert "A. Author, B. Author et al." in html
    assert "Why: matched &#39;sparse attention&#39;" in html
    assert "2 of 9 papers" in html
