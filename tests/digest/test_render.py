"""Rendering digests: subject, escaping, HTML that mail clients read well, text with the same content.

Golden files in tests/digest/golden/ pin the rendered digest; regenerate them with
`PAPERBOY_UPDATE_GOLDEN=1 python -m pytest tests/digest/test_render.py` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from service.digest.model import Digest, DigestItem, DigestLinks, Segment
from service.digest.render import environment, render, render_digest_email, render_email

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PAPERBOY_UPDATE_GOLDEN") == "1"


def item(paper_id: int, title: str = "Sparse attention at scale", **kw: object) -> DigestItem:
    fields: dict[str, object] = {
        "url": f"https://arxiv.org/abs/2611.{paper_id:05d}",
        "authors": ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
        "author_count": 7,
        "organization": "Analytical Engines Ltd",
        "published_on": dt.date(2026, 11, 20),
        "upvotes": 42,
        "code_url": "https://github.com/example/sparse",
        "score": 0.87,
        "why": "matched 'sparse attention', 'kv cache'",
        "snippet": [
            Segment("We revisit "),
            Segment("sparse attention", hit=True),
            Segment(" for long contexts and shrink the "),
            Segment("kv cache", hit=True),
            Segment(" by 4x."),
        ],
        "matched_terms": ["sparse attention", "kv cache"],
        "interest": "sparse attention",
    }
    fields.update(kw)
    return DigestItem(paper_id=paper_id, title=title, **fields)  # type: ignore[arg-type]


def digest(items: list[DigestItem], period: str = "2026-11-23", topic: str = "sparse attention") -> Digest:
    base = "https://paperboy.example"
    return Digest(
        subscription_id=7,
        period=period,
        topic=topic,
        items=items,
        links=DigestLinks(
            manage=f"{base}/manage/M-token",
            unsubscribe=f"{base}/unsubscribe/U-token",
            unsubscribe_post=f"{base}/unsubscribe/U-token",
            feedback={
                i.paper_id: (f"{base}/feedback/R{i.paper_id}", f"{base}/feedback/N{i.paper_id}")
                for i in items
            },
        ),
        generated_at=dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC),
    )


def golden_digest() -> Digest:
    return digest(
        [
            item(1, pdf_url="https://arxiv.org/pdf/2611.00001"),
            item(
                2,
                "Speculative decoding & friends: a <survey>",
                authors=[],
                author_count=12,
                organization=None,
                upvotes=None,
                code_url=None,
                why="matched 'kv cache'",
                snippet=[
                    Segment("Drafting tokens cheaply and verifying them saves a "),
                    Segment("kv cache", True),
                    Segment(" pass."),
                ],
                interest="kv cache",
            ),
            item(
                3,
                "Ünïcödé titles — and long ones that keep going well past the width of a line",
                authors=["Zoë"],
                author_count=1,
            ),
        ]
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


def test_subject_counts_papers_names_the_topic_and_the_day() -> None:
    seven = render_digest_email(digest([item(i) for i in range(1, 8)]))
    assert seven.subject == "7 new papers on sparse attention · Mon 23 Nov"
    assert render_digest_email(digest([item(1)])).subject == "1 new paper on sparse attention · Mon 23 Nov"
    weekly = render_digest_email(digest([item(1), item(2)], period="2026-W48"))
    assert weekly.subject == "2 new papers on sparse attention · week of Mon 23 Nov"
    assert render_digest_email(digest([])).subject == "No new papers on sparse attention · Mon 23 Nov"


def test_paper_text_cannot_inject_markup_links_or_lines() -> None:
    evil = item(
        1,
        "Attention\r\nBcc: victim@example.org <script>alert('t')</script>",
        snippet=[
            Segment("<script>alert(1)</script> <img src=https://tracker.example/x.png> "),
            Segment("<b>hit</b>", True),
        ],
        why="matched '<i>x</i>'",
        organization="<a href='https://evil.example'>Org</a>",
        url="javascript:alert(1)",
        code_url="https://github.com/ok\r\nX: y",
    )
    rendered = render_digest_email(digest([evil], topic="sparse\r\nattention <b>"))
    tags = parse(rendered.html)
    names = [t for t, _ in tags.tags]
    assert "script" not in names and "img" not in names and "b" not in names and "i" not in names
    assert not any(a.get("href", "").startswith(("javascript", "https://evil")) for _, a in tags.tags)  # type: ignore[union-attr]
    assert not any("github.com/ok" in (a.get("href") or "") for _, a in tags.tags)
    text = "".join(tags.text)
    assert "<script>alert(1)</script>" in text  # shown as text, escaped in the source
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.subject == "1 new paper on sparse attention <b> · Mon 23 Nov"
    title_lines = [line for line in rendered.text.splitlines() if "Bcc:" in line]
    assert title_lines == ["1. Attention Bcc: victim@example.org <script>alert('t')</script>"]
    assert "javascript:" not in rendered.text and "javascript:" not in rendered.html


def test_html_reads_well_in_mail_clients() -> None:
    html = render_digest_email(golden_digest()).html
    tags = parse(html)
    names = {t for t, _ in tags.tags}
    assert {"table", "tr", "td"} <= names
    assert not names & {"script", "img", "link", "iframe", "form", "object"}
    metas = {a.get("name"): a.get("content") for t, a in tags.tags if t == "meta"}
    assert metas["color-scheme"] == "light dark"
    assert "@media (prefers-color-scheme: dark)" in html
    assert "src=" not in html and "url(" not in html  # nothing loaded from anywhere
    styled = [a for t, a in tags.tags if t == "td" and "card" in (a.get("class") or "")]
    styles = [(a.get("style") or "").replace(" ", "") for a in styled]
    assert styles and all("background-color:#ffffff" in style for style in styles)  # inlined
    hrefs = [a["href"] for t, a in tags.tags if t == "a"]
    assert all(h and h.startswith("https://") for h in hrefs)


def test_text_part_carries_the_same_content_as_html() -> None:
    d = golden_digest()
    rendered = render_digest_email(d, recipient="reader@example.org")
    html_links = {a["href"] for t, a in parse(rendered.html).tags if t == "a"}
    for link in html_links:
        assert link in rendered.text
    for it in d.items:
        assert " ".join(it.title.split())[:40] in rendered.text
    assert {d.links.manage, d.links.unsubscribe} <= html_links
    assert "*sparse attention*" in rendered.text and "*kv cache*" in rendered.text
    assert "12 authors" in rendered.text and "Ada Lovelace, Alan Turing et al." in rendered.text
    assert "▲ 42 upvotes" in rendered.text and "20 Nov 2026" in rendered.text
    assert "reader@example.org" in rendered.text and "reader@example.org" in rendered.html


def test_one_environment_strict_and_escaping_only_html() -> None:
    env = environment()
    assert env is environment()
    with pytest.raises(UndefinedError):
        render("email", "confirm", "body.html", {"email": "a@example.org"})  # confirm_url missing
    context = {"email": "<a@example.org>", "confirm_url": "https://x.example/confirm/T"}
    assert "<a@example.org>" in render("email", "confirm", "body.txt", context)
    assert "&lt;a@example.org&gt;" in render("email", "confirm", "body.html", context)
    confirm = render_email("confirm", context)
    assert confirm.subject == "Confirm your paperboy subscription"
    assert (
        "https://x.example/confirm/T" in confirm.text and 'href="https://x.example/confirm/T"' in confirm.html
    )


@pytest.mark.parametrize(
    ("name", "part"), [("digest.html", "html"), ("digest.txt", "text"), ("digest-subject.txt", "subject")]
)
def test_rendered_digest_matches_golden_file(name: str, part: str) -> None:
    rendered = render_digest_email(golden_digest(), recipient="reader@example.org")
    actual = getattr(rendered, part) + ("\n" if part == "subject" else "")
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE and os.environ.get("CI"):
            pytest.fail(f"{path} is missing; run with PAPERBOY_UPDATE_GOLDEN=1 and commit it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs; PAPERBOY_UPDATE_GOLDEN=1 regenerates it"
    )
