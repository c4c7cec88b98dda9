"""Link unfurling: an arXiv or Hugging Face paper link pasted in a channel with a paperboy digest is
shown with its title, authors, a one-line summary and an "add as a seed" button (chat.unfurl).

Only papers paperboy already holds are unfurled (nothing is fetched from the link), only in channels
with a live subscription, and within Slack's limits (a few links an event, 3,000 characters a text).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels.slack_blocks import ADD_SEED, clip, link, seed_value
from service.channels.slack_subscriptions import channel_subscriptions
from service.config import Settings
from service.ingest.normalize import normalize_arxiv_id
from service.models import Paper
from service.slack_app.client import NotInstalled, workspace_client

log = logging.getLogger("paperboy.slack")
ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
HF_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_HF_PAPER = re.compile(r"^/papers/([^/?#]+)/?$")
MAX_LINKS = 5  # Slack sends at most a handful a message; more are not worth a bigger call
SUMMARY_CHARS = 200
AUTHORS_SHOWN = 6


def paper_id_of(url: str) -> str | None:
    """The arXiv id an arXiv or Hugging Face paper URL names, or None."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        return None
    if host in ARXIV_HOSTS:
        return normalize_arxiv_id(url)
    if host in HF_HOSTS:
        match = _HF_PAPER.match(parts.path)
        return normalize_arxiv_id(match.group(1)) if match else None
    return None


def one_line(abstract: str) -> str:
    """The abstract's first sentence, escaped for mrkdwn, at most SUMMARY_CHARS characters."""
    text = " ".join(abstract.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return clip(sentence, SUMMARY_CHARS)


def unfurl_blocks(paper: Paper, url: str, channel_id: str, settings: Settings) -> list[Block]:
    authors = [str(a) for a in paper.authors or []]
    shown = ", ".join(authors[:AUTHORS_SHOWN]) + (" et al." if len(authors) > AUTHORS_SHOWN else "")
    title = clip(paper.title or "(untitled)", 300)
    text = f"*{link(url, title)}*"
    if len(text) > 2000:  # only an absurd URL gets here: the title stays, unlinked
        text = f"*{title}*"
    summary = one_line(paper.abstract or "")
    if summary:
        text += f"\n{summary}"
    section = SectionBlock(block_id=f"unfurl-{paper.id}", text=MarkdownTextObject(text=text, verbatim=True))
    blocks: list[Block] = [section]
    if shown:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(shown, 3000), verbatim=True)]))
    value = seed_value(None, paper.id, settings, channel_id)
    blocks.append(
        ActionsBlock(
            block_id=f"unfurl-actions-{paper.id}",
            elements=[ButtonElement(text="Add as a seed", action_id=ADD_SEED, value=value)],
        )
    )
    return blocks


def unfurls_for(session: Session, settings: Settings, channel_id: str, links: list[Any]) -> dict[str, Any]:
    """{url: {"blocks": [...]}} for the paper links paperboy knows, in a channel it serves."""
    if not channel_subscriptions(session, channel_id):
        return {}
    wanted: dict[str, str] = {}
    for item in links[:MAX_LINKS]:
        url = str(item.get("url") or "") if isinstance(item, dict) else ""
        arxiv_id = paper_id_of(url)
        if arxiv_id:
            wanted[url] = arxiv_id
    if not wanted:
        return {}
    papers = {
        p.arxiv_id: p for p in session.scalars(select(Paper).where(Paper.arxiv_id.in_(set(wanted.values()))))
    }
    return {
        url: {"blocks": [b.to_dict() for b in unfurl_blocks(papers[aid], url, channel_id, settings)]}
        for url, aid in wanted.items()
        if aid in papers
    }


def unfurl_links(
    settings: Settings, engine: Engine, team_id: str | None, enterprise_id: str | None, event: dict[str, Any]
) -> None:
    """Answer a link_shared event with chat.unfurl (after the event was acknowledged)."""
    channel_id = str(event.get("channel") or "")
    links = event.get("links") if isinstance(event.get("links"), list) else []
    try:
        with Session(engine) as session:
            unfurls = unfurls_for(session, settings, channel_id, links)
            if not unfurls:
                return
            client = workspace_client(session, settings, team_id, enterprise_id)
        where: dict[str, Any] = {"channel": channel_id, "ts": str(event.get("message_ts") or "")}
        if event.get("unfurl_id") and event.get("source"):  # a link still being typed (composer)
            where = {"unfurl_id": str(event["unfurl_id"]), "source": str(event["source"])}
        client.chat_unfurl(unfurls=unfurls, **where)
    except (NotInstalled, SlackApiError, OSError) as exc:
        log.warning("slack: links in %s not unfurled: %s", channel_id, type(exc).__name__)
