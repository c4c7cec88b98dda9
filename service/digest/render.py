"""Every template paperboy renders goes through one Jinja2 Environment (DESIGN convention 5).

Templates are found by naming convention: `templates/{channel}/{name}-subject.txt.j2`,
`{name}-body.txt.j2` and `{name}-body.html.j2`. HTML templates are autoescaped and every undefined
name is an error (StrictUndefined), so paper text can never become markup and a typo never renders
as an empty string. The HTML of an email has its CSS inlined with css-inline, keeping the
`@media (prefers-color-scheme: dark)` rules in a <style> tag for the clients that honour them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from service.digest.model import Digest, DigestItem, Segment
from service.display import finalize

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
PARTS = ("subject.txt", "body.txt", "body.html")
_WHITESPACE = re.compile(r"\s+")
_MAX_AUTHORS_SHOWN = 3


@dataclass(frozen=True)
class RenderedEmail:
    """An email's three rendered parts; the subject is always a single line."""

    subject: str
    text: str
    html: str


def one_line(value: object) -> str:
    """Whitespace (CR, LF, tabs, Unicode line separators) collapsed to single spaces, ends trimmed:
    safe in a header."""
    return " ".join(str(value).split())


def squash(value: object) -> str:
    """Whitespace collapsed but not trimmed, so snippet segments keep the spaces between them."""
    return _WHITESPACE.sub(" ", str(value))


def wrap(value: object, width: int = 72, indent: int = 0) -> str:
    """Greedy word wrap for plain text; lines after the first indented by `indent` spaces.

    Words longer than the width (URLs) are never broken. Several times faster than the wordwrap
    filter (textwrap), which dominated the text part's rendering time; a text that fits on one line
    (most why-lines and meta lines) is only collapsed.
    """
    words = str(value).split()
    if not words:
        return ""
    joined = " ".join(words)
    if len(joined) <= width:
        return joined
    lines: list[str] = []
    start, length = 0, len(words[0])
    for n in range(1, len(words)):
        size = len(words[n])
        if length + 1 + size > width:
            lines.append(" ".join(words[start:n]))
            start, length = n, size
        else:
            length += 1 + size
    lines.append(" ".join(words[start:]))
    return ("\n" + " " * indent).join(lines)


def _autoescape(template_name: str | None) -> bool:
    # Plain-text parts are not HTML: escaping them would show "&amp;" to readers. Everything else
    # (HTML, and any future format) is escaped by default.
    return not (template_name or "").endswith(".txt.j2")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Environment: autoescape on, StrictUndefined, templates/ as the root."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=finalize,  # no bidi override or invisible character reaches a page or an email
    )
    env.filters["one_line"] = one_line
    env.filters["squash"] = squash
    env.filters["wrap"] = wrap
    env.filters["authors_label"] = authors_label
    return env


def render(channel: str, name: str, part: str, context: Mapping[str, Any]) -> str:
    """Render `templates/{channel}/{name}-{part}.j2`; `part` is e.g. "subject.txt" or "body.html"."""
    return environment().get_template(f"{channel}/{name}-{part}.j2").render(context)


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # keep_at_rules: media queries (dark mode, narrow screens) cannot be inlined, so they stay in a
    # <style> block; nothing is ever fetched from the network.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False, minify_css=True)


def render_email(name: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Subject, text and HTML (CSS inlined) of the email template set `templates/email/{name}-*`."""
    subject = one_line(render("email", name, "subject.txt", context))
    text = render("email", name, "body.txt", context)
    html = _inliner().inline(render("email", name, "body.html", context))
    return RenderedEmail(subject=subject, text=text, html=html)


# --- digests ------------------------------------------------------------------------------------


def period_date(period: str, fallback: dt.date) -> dt.date:
    """The date a period stands for: the day itself, or the Monday of an ISO week ("2026-W48")."""
    try:
        if "-W" in period:
            year, week = period.split("-W", 1)
            return dt.date.fromisocalendar(int(year), int(week), 1)
        return dt.date.fromisoformat(period)
    except ValueError:
        return fallback


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_label(day: dt.date) -> str:
    """ "Mon 23 Nov": fixed English names, so output never depends on the machine's locale."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def authors_label(item: DigestItem) -> str:
    """ "Ada Lovelace, Alan Turing, Grace Hopper" / "A, B et al." / "12 authors" when names are unknown."""
    names = [name for name in map(one_line, item.authors) if name]
    total = max(item.author_count or 0, len(names))
    if not names:
        return f"{total} author{'s' if total != 1 else ''}" if total else ""
    if total <= _MAX_AUTHORS_SHOWN and len(names) == total:
        return ", ".join(names)
    return ", ".join(names[:2]) + " et al."


def subject_line(count: int, topic: str, day: dt.date, weekly: bool) -> str:
    """`7 new papers on sparse attention · Mon 23 Nov` (weekly: `... · week of Mon 23 Nov`)."""
    papers = "No new papers" if count == 0 else f"{count} new paper{'s' if count != 1 else ''}"
    when = ("week of " if weekly else "") + date_label(day)
    return one_line(f"{papers} on {one_line(topic)} · {when}")


def safe_url(url: str | None) -> str:
    """`url` when it is an absolute http(s) URL, else "": a dump cannot smuggle `javascript:` links."""
    value = (url or "").strip()
    if _WHITESPACE.search(value) or not value.lower().startswith(("https://", "http://")):
        return ""
    return value


def snippet_text(segments: list[Segment]) -> str:
    """The snippet as plain text, matched terms between asterisks (*sparse attention*)."""
    parts: list[str] = []
    for seg in segments:
        text = squash(seg.text)
        if seg.hit and text.strip():
            core = text.strip()
            lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
            text = f"{lead}*{core}*{trail}"
        parts.append(text)
    return "".join(parts).strip()


def merge_hits(segments: list[Segment]) -> list[Segment]:
    """Empty segments dropped; matched words separated only by spaces joined into one highlight
    ("*sparse attention*", not "*sparse* *attention*")."""
    merged: list[Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        if (
            seg.hit
            and len(merged) >= 2
            and merged[-2].hit
            and not merged[-1].hit
            and not merged[-1].text.strip()
        ):
            gap = merged.pop()
            merged[-1] = Segment(merged[-1].text + gap.text + seg.text, hit=True)
        elif seg.hit and merged and merged[-1].hit:
            merged[-1] = Segment(merged[-1].text + seg.text, hit=True)
        else:
            merged.append(seg)
    return merged


def _item_context(rank: int, item: DigestItem, digest: Digest) -> dict[str, Any]:
    meta = [authors_label(item), one_line(item.organization or "")]
    if item.published_on:
        day = item.published_on
        meta.append(f"{day.day} {_MONTHS[day.month - 1]} {day.year}")
    if item.upvotes:
        meta.append(f"▲ {item.upvotes} upvote{'s' if item.upvotes != 1 else ''}")
    snippet = merge_hits(item.snippet)
    return {
        "item": item,
        "rank": rank,
        "title": one_line(item.title),
        "url": safe_url(item.url),
        "code_url": safe_url(item.code_url),
        "pdf_url": safe_url(item.pdf_url),
        "meta": [m for m in meta if m],
        "snippet": snippet,
        "snippet_text": snippet_text(snippet),
        "why": one_line(item.why),
        "tldr": one_line(item.tldr or ""),
        "feedback": digest.links.feedback.get(item.paper_id),
        "follow": digest.links.follow.get(item.paper_id),
    }


def digest_context(digest: Digest, *, recipient: str | None = None) -> dict[str, Any]:
    """Everything the digest templates use, with labels precomputed (templates stay logic-free)."""
    day = period_date(digest.period, digest.generated_at.date())
    weekly = "-W" in digest.period
    items = [_item_context(rank, item, digest) for rank, item in enumerate(digest.items, start=1)]
    return {
        "digest": digest,
        "items": items,
        "count": len(items),
        "topic": one_line(digest.topic),
        "subject": subject_line(len(items), digest.topic, day, weekly),
        "date_label": ("week of " if weekly else "") + date_label(day),
        "links": digest.links,
        "recipient": one_line(recipient or ""),
    }


def render_digest_email(digest: Digest, *, recipient: str | None = None) -> RenderedEmail:
    """A digest as an email: subject, plain text and HTML with the same content."""
    return render_email("digest", digest_context(digest, recipient=recipient))
