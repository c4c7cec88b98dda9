"""A digest as webhook payloads for Discord, Microsoft Teams and Mattermost, within each platform's
documented limits; a digest that does not fit one message is split into several, never cut short
(only a single over-long title or reason is shortened, visibly, with "…").

- Discord (execute webhook): `content` ≤ 2,000 characters, ≤ 10 embeds a message, embed title ≤ 256,
  description ≤ 4,096, footer ≤ 2,048, all embeds of a message ≤ 6,000 characters together;
  `allowed_mentions` empty so paper text never pings anyone.
- Teams (incoming webhook, Adaptive Card 1.4 in a message attachment): the whole request ≤ 28 KB.
- Mattermost (incoming webhook): `text` ≤ 16,383 characters; "@" in paper text is followed by a
  zero-width space so "@channel" in a title notifies nobody.
Pure functions: a digest in, JSON-ready dicts out (tested against loopback servers checking limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from service.digest.model import Digest
from service.digest.render import digest_context

PLATFORMS = ("discord", "teams", "mattermost")
ELLIPSIS = "…"

DISCORD_CONTENT = 2000
DISCORD_EMBEDS = 10
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FOOTER = 2048
DISCORD_TOTAL = 6000
TEAMS_BYTES = 28 * 1024
MATTERMOST_TEXT = 16383

_MARKDOWN = re.compile(r"([\\`*_~|>\[\]()#])")
Payload = dict[str, Any]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def md_escape(text: str) -> str:
    """Markdown characters shown as themselves; "@" cannot start a mention."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split())).replace("@", "@\u200b")


def _links_line(ctx: dict[str, Any]) -> str:
    links = ctx["links"]
    parts = [f"[View in browser]({links.view})"] if links.view else []
    parts += [f"[Past digests]({links.archive})"] if links.archive else []
    return " · ".join(parts)


def _paper_lines(entry: dict[str, Any]) -> list[str]:
    title = md_escape(entry["title"])
    head = (
        f"**{entry['rank']}. [{title}]({entry['url']})**" if entry["url"] else f"**{entry['rank']}. {title}**"
    )
    lines = [head]
    if entry["meta"]:
        lines.append(md_escape(" · ".join(entry["meta"])))
    if entry.get("tldr"):
        lines.append("TL;DR: " + md_escape(entry["tldr"]))
    if entry["why"]:
        lines.append("_Why: " + md_escape(clip(entry["why"], 600)) + "_")
    return lines


# --- Discord -------------------------------------------------------------------------------------


def _embed(entry: dict[str, Any]) -> dict[str, Any]:
    description = "\n".join(_paper_lines(entry)[1:]) or md_escape(entry["title"])
    embed: dict[str, Any] = {
        "title": clip(f"{entry['rank']}. {entry['title']}", DISCORD_TITLE),
        "description": clip(description, 1500),
    }
    if entry["url"]:
        embed["url"] = entry["url"]
    return embed


def _embed_size(embed: dict[str, Any]) -> int:
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + len(embed.get("footer", {}).get("text", ""))
    )


def discord_payloads(digest: Digest) -> list[Payload]:
    ctx = digest_context(digest)
    head = clip(
        md_escape(ctx["subject"]) + ("\n" + _links_line(ctx) if _links_line(ctx) else ""), DISCORD_CONTENT
    )
    embeds = [_embed(entry) for entry in ctx["items"]]
    messages: list[list[dict[str, Any]]] = [[]]
    for embed in embeds:
        current = messages[-1]
        if (
            len(current) >= DISCORD_EMBEDS
            or sum(map(_embed_size, current)) + _embed_size(embed) > DISCORD_TOTAL
        ):
            messages.append([])
        messages[-1].append(embed)
    payloads = []
    for n, group in enumerate(messages):
        content = (
            head
            if n == 0
            else clip(f"{md_escape(ctx['subject'])} (part {n + 1} of {len(messages)})", DISCORD_CONTENT)
        )
        if not group and n == 0:
            content = clip(head + "\nNo new papers matched this time.", DISCORD_CONTENT)
        payloads.append({"content": content, "embeds": group, "allowed_mentions": {"parse": []}})
    return payloads


# --- Teams ---------------------------------------------------------------------------------------


def _teams_card(body: list[dict[str, Any]]) -> Payload:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def _size(payload: Payload) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def teams_payloads(digest: Digest) -> list[Payload]:
    ctx = digest_context(digest)
    head = [_text_block(md_escape(ctx["subject"]), size="Large", weight="Bolder")]
    if _links_line(ctx):
        head.append(_text_block(_links_line(ctx), isSubtle=True))
    groups = [
        [_text_block(line, spacing="Medium" if i == 0 else "None") for i, line in enumerate(_paper_lines(e))]
        for e in ctx["items"]
    ]
    if not groups:
        groups = [[_text_block("No new papers matched this time.")]]
    return _pack(
        groups,
        head,
        lambda n, total: [_text_block(f"{md_escape(ctx['subject'])} (part {n} of {total})", weight="Bolder")],
        _teams_card,
        lambda p: _size(p) <= TEAMS_BYTES - 512,
    )


# --- Mattermost ----------------------------------------------------------------------------------


def mattermost_payloads(digest: Digest) -> list[Payload]:
    ctx = digest_context(digest)
    head = [f"#### {md_escape(ctx['subject'])}"] + ([_links_line(ctx)] if _links_line(ctx) else [])
    groups = [["\n".join(_paper_lines(e))] for e in ctx["items"]] or [["No new papers matched this time."]]

    def build(lines: list[str]) -> Payload:
        return {"text": "\n\n".join(lines)}

    return _pack(
        groups,
        head,
        lambda n, total: [f"#### {md_escape(ctx['subject'])} (part {n} of {total})"],
        build,
        lambda p: len(p["text"]) <= MATTERMOST_TEXT,
    )


def _pack(
    groups: list[list[Any]],
    head: list[Any],
    part_head: Callable[[int, int], list[Any]],
    build: Callable[[list[Any]], Payload],
    fits: Callable[[Payload], bool],
) -> list[Payload]:
    """Whole papers into as few messages as fit; later messages say which part they are."""
    parts: list[list[Any]] = [[]]
    for group in groups:
        probe_head = head if len(parts) == 1 else part_head(99, 99)
        if parts[-1] and not fits(build(probe_head + parts[-1] + group)):
            parts.append([])
        parts[-1].extend(group)
    payloads = []
    for n, part in enumerate(parts, start=1):
        payload = build((head if n == 1 else part_head(n, len(parts))) + part)
        if not fits(payload):
            raise ValueError(f"one paper does not fit a webhook message ({len(json.dumps(payload))} bytes)")
        payloads.append(payload)
    return payloads


BUILDERS: dict[str, Callable[[Digest], list[Payload]]] = {
    "discord": discord_payloads,
    "teams": teams_payloads,
    "mattermost": mattermost_payloads,
}
