"""`paperboy match PROFILE --since DATE`: the stored papers a profile wants, best first, and why.

The same ranking the digests use (service.digest.rank.rank_papers), run by hand: to try a new
interest on last week's papers before subscribing, or to see why a paper was (not) sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from service.config import get_settings
from service.db import get_engine, session_scope
from service.digest.model import DigestItem
from service.models import Paper
from service.profile import ProfileError, get_profile

console = Console(highlight=False, soft_wrap=True)  # long titles wrap in the terminal, not mid-markup
DEFAULT_DAYS = 7
_DAYS_AGO = re.compile(r"^(\d{1,4})d$")
_SPACE = re.compile(r"\s+")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def parse_since(text: str | None, now: dt.datetime) -> dt.datetime:
    """`YYYY-MM-DD` (midnight UTC), an ISO datetime (UTC unless it says otherwise), or `Nd` (N days ago)."""
    if text is None:
        return now - dt.timedelta(days=DEFAULT_DAYS)
    value = text.strip()
    days = _DAYS_AGO.match(value)
    if days:
        return now - dt.timedelta(days=int(days.group(1)))
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"--since {text!r} is not a date: use YYYY-MM-DD, an ISO datetime or Nd (N days ago)"
        ) from exc
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def item_json(rank: int, item: DigestItem) -> dict[str, Any]:
    """One ranked paper for --json: the snippet as text plus [start, end) spans of its highlights."""
    text, spans = "", []
    for segment in item.snippet:
        if segment.hit:
            spans.append([len(text), len(text) + len(segment.text)])
        text += segment.text
    return {
        "rank": rank,
        "paper_id": item.paper_id,
        "title": item.title,
        "url": item.url,
        "score": item.score,
        "interest": item.interest,
        "why": item.why,
        "matched_terms": item.matched_terms,
        "snippet": text,
        "highlights": spans,
    }


def _print_item(rank: int, item: DigestItem) -> None:
    title = escape(" ".join(item.title.split()))
    console.print(
        f"[bold]{rank:2d}. {title}[/bold]  [dim]score {item.score:.3f} · {escape(item.interest or '')}[/]"
    )
    if item.url:
        console.print(f"    [blue]{escape(item.url)}[/blue]")
    console.print(f"    why: {escape(item.why)}")
    # Whitespace is collapsed per segment, before escaping, so no markup is ever split.
    texts = [_SPACE.sub(" ", s.text) for s in item.snippet]
    if texts:
        texts[0] = texts[0].lstrip()
        texts[-1] = texts[-1].rstrip()
    snippet = "".join(
        f"[bold yellow]{escape(text)}[/bold yellow]" if segment.hit else escape(text)
        for text, segment in zip(texts, item.snippet, strict=True)
    )
    if snippet:
        console.print(f"    [dim]{snippet}[/dim]")


def match_command(
    profile: str = typer.Argument(..., help="Profile name or id."),
    since: str | None = typer.Option(
        None, "--since", help=f"Papers first seen since this date (default: {DEFAULT_DAYS} days ago)."
    ),
    interest: list[str] = typer.Option([], "--interest", "-i", help="Only this interest (repeatable)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Print at most this many papers."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of text."),
    lexical_only: bool = typer.Option(
        False, "--lexical-only", help="Skip the sentence embedding even when the extra is installed."
    ),
) -> None:
    """Rank the stored papers first seen since DATE for PROFILE, with the reason for each."""
    from service.digest.rank import rank_papers  # the matching engine loads only when needed

    settings = get_settings()
    if lexical_only:
        settings = settings.model_copy(update={"semantic": False})
    now = dt.datetime.now(dt.UTC)
    try:
        start = parse_since(since, now)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    with session_scope(get_engine(settings)) as session:
        try:
            stored = get_profile(session, profile)
        except ProfileError as exc:
            raise _fail(f"{exc} (see `paperboy profile list`)") from exc
        names = [i.name for i in stored.interests]
        if not names:
            raise _fail(f"profile {stored.name!r} has no interests (add one with `paperboy profile set`)")
        unknown = [name for name in interest if name not in names]
        if unknown:
            raise _fail(f"profile {stored.name!r} has no interest {unknown[0]!r}; it has: {', '.join(names)}")
        papers = list(session.scalars(select(Paper).where(Paper.first_seen_at >= start).order_by(Paper.id)))
        ranked = rank_papers(session, stored, papers, interests=interest or None, settings=settings)
        name = stored.name
    items = ranked[:limit]
    if as_json:
        document = {
            "profile": name,
            "since": start.isoformat(),
            "interests": interest or names,
            "papers": len(papers),
            "matched": len(ranked),
            "matches": [item_json(n, item) for n, item in enumerate(items, 1)],
        }
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return
    shown = f" (showing {len(items)})" if len(items) < len(ranked) else ""
    console.print(
        f"profile [bold]{escape(name)}[/bold]: {len(ranked)} of {len(papers)} papers first seen since "
        f"{start:%Y-%m-%d %H:%M} UTC match{shown}"
    )
    for rank, item in enumerate(items, 1):
        _print_item(rank, item)
