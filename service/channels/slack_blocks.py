"""A digest as Slack Block Kit messages: a parent message, then thread replies when it is long.

Blocks are plain Block Kit JSON: slack_sdk's models validate the same fields but cost ten times as
much, so the tests parse every message back into them, and `check_limits` enforces Slack's limits
before anything is sent (an invalid message fails here rather than at Slack). Paper text is escaped
(&, <, >) and placed in `verbatim` mrkdwn, so a title cannot ping @channel, open a link of its own
or break the markup. Slack allows 50 blocks a message: a digest that needs more is split into parts,
each labelled, never cut short; only a single over-long title or excerpt is shortened, visibly (…).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from service.config import Settings
from service.digest.model import Digest, Segment
from service.digest.render import digest_context, squash
from service.display import neutralise
from service.tokens import make_token

MAX_BLOCKS = 50  # per message
MAX_TEXT = 3000  # per text field (section text, context element)
MAX_HEADER = 150  # header block text
MAX_FALLBACK = 3000  # the message's `text` (notifications, clients without blocks)
TITLE_CHARS = 300  # a title longer than this is shortened with "…" (its link leads to the whole)
EXCERPT_CHARS = 600
RELEVANT, NOT_RELEVANT = "paperboy_relevant", "paperboy_not_relevant"  # button action ids
MORE_LIKE_THIS, EDIT_DIGEST = "paperboy_more_like_this", "paperboy_edit_digest"
ADD_SEED = "paperboy_add_seed"  # an unfurled paper's button
FOLLOW_AUTHORS = "paperboy_follow_authors"
ELLIPSIS = "…"


@dataclass(frozen=True)
class SlackMessage:
    """One chat.postMessage: fallback text and Block Kit blocks (as JSON-ready dicts)."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters escaped (the only escaping mrkdwn wants), bidi controls and
    invisible characters removed."""
    return neutralise(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped_prefix(text: str, limit: int) -> str:
    """The longest start of `text` whose escaped form fits in `limit` characters (escaped)."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    keep = min(len(text), max(limit, 0))
    while keep > 0:
        # Cut the raw text, never inside an escape sequence; escaping lengthens it, so re-measure.
        candidate = escape(text[:keep].rstrip())
        if len(candidate) <= limit:
            return candidate
        keep -= max(1, (len(candidate) - limit) // 5)
    return ""


def clip(text: str, limit: int) -> str:
    """`text` escaped and at most `limit` characters; a shortened text ends with "…" so it shows."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    return escaped_prefix(text, limit - len(ELLIPSIS)) + ELLIPSIS


def link(url: str, label: str) -> str:
    """A mrkdwn link `<url|label>`; `url` is already a checked http(s) URL (render.safe_url)."""
    # In `<url|label>` the URL may hold none of | < > and its & is written &amp; like Slack does.
    target = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{target}|{label}>"


def excerpt(segments: Sequence[Segment], limit: int = EXCERPT_CHARS) -> str:
    """The snippet as mrkdwn, matched terms in bold, at most `limit` characters once escaped."""
    parts: list[str] = []
    used = 0
    for seg in segments:
        raw = squash(seg.text)
        core = raw.strip()
        lead, trail = raw[: len(raw) - len(raw.lstrip())], raw[len(raw.rstrip()) :]
        marks = 2 if seg.hit and core else 0  # the asterisks around a matched term
        text = escape(core)
        size = len(lead) + len(text) + marks + len(trail)
        if used + size > limit:
            cut = escaped_prefix(core, limit - used - len(lead) - marks - len(ELLIPSIS))
            parts.append(lead + (f"*{cut}*" if marks and cut else cut) + ELLIPSIS)
            break
        parts.append(lead + (f"*{text}*" if marks else text) + trail)
        used += size
    return "".join(parts).strip()


Block = dict[str, Any]


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not turn "@channel" or "#general" in paper text into mentions or links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": neutralise(text), "emoji": True}


def _context(block_id: str, *texts: str) -> Block:
    return {"type": "context", "block_id": block_id, "elements": [_mrkdwn(t) for t in texts]}


def _section(block_id: str, text: str) -> Block:
    return {"type": "section", "block_id": block_id, "text": _mrkdwn(text)}


DIVIDER: Block = {"type": "divider"}


def feedback_value(subscription_id: int, paper_id: int, relevant: bool, settings: Settings) -> str:
    """A button's value: a signed, expiring token naming the subscription, the paper and the verdict."""
    return make_token(
        "slack-action", subscription_id=subscription_id, settings=settings, paper=paper_id, relevant=relevant
    )


def seed_value(subscription_id: int | None, paper_id: int, settings: Settings, channel: str = "") -> str:
    """A "more like this" / "add as a seed" value: signed, naming the paper and where it goes."""
    return make_token(
        "slack-action",
        subscription_id=subscription_id,
        settings=settings,
        paper=paper_id,
        seed=channel or True,
    )


def follow_value(subscription_id: int, paper_id: int, settings: Settings) -> str:
    """The "follow authors" value: signed, naming the subscription and the paper."""
    return make_token(
        "slack-action", subscription_id=subscription_id, settings=settings, paper=paper_id, follow="authors"
    )


def edit_value(subscription_id: int, settings: Settings) -> str:
    """The "edit this digest" value: signed, naming the subscription."""
    return make_token("slack-action", subscription_id=subscription_id, settings=settings, edit=True)


def paper_blocks(entry: dict[str, Any], digest: Digest, settings: Settings) -> list[Block]:
    """A paper's blocks: linked title and excerpt; authors, date, upvotes, why; the two buttons."""
    item = entry["item"]
    title = clip(entry["title"] or "(untitled)", TITLE_CHARS)
    heading = f"*{entry['rank']}. {link(entry['url'], title) if entry['url'] else title}*"
    if len(heading) > MAX_TEXT // 2:  # only an absurd URL gets here: the title stays, unlinked
        heading = f"*{entry['rank']}. {title}*"
    body = excerpt(entry["snippet"], min(EXCERPT_CHARS, MAX_TEXT - len(heading) - 1))
    section = _section(f"paper-{item.paper_id}", heading + (f"\n{body}" if body else ""))
    meta = " · ".join(escape(m) for m in entry["meta"])
    if entry["pdf_url"]:
        meta += (" · " if meta else "") + link(entry["pdf_url"], "PDF")
    if entry["code_url"]:
        meta += (" · " if meta else "") + link(entry["code_url"], "code")
    context: list[str] = []
    if meta:
        context.append(clip_mrkdwn(meta))
    if entry["why"]:
        context.append(clip(f"Why: {entry['why']}", MAX_TEXT))
    blocks: list[Block] = [section]
    if context:
        blocks.append(_context(f"about-{item.paper_id}", *context))
    relevant = feedback_value(digest.subscription_id, item.paper_id, True, settings)
    not_relevant = feedback_value(digest.subscription_id, item.paper_id, False, settings)
    blocks.append(
        {
            "type": "actions",
            "block_id": f"feedback-{item.paper_id}",
            "elements": [
                {
                    "type": "button",
                    "text": _plain("Relevant"),
                    "action_id": RELEVANT,
                    "value": relevant,
                    "style": "primary",
                },
                {
                    "type": "button",
                    "text": _plain("Not relevant"),
                    "action_id": NOT_RELEVANT,
                    "value": not_relevant,
                },
                {
                    "type": "button",
                    "text": _plain("More like this"),
                    "action_id": MORE_LIKE_THIS,
                    "value": seed_value(digest.subscription_id, item.paper_id, settings),
                },
            ],
        }
    )
    if item.authors and item.paper_id in digest.links.follow:  # the reader features offer following
        follow = follow_value(digest.subscription_id, item.paper_id, settings)
        button = {
            "type": "button",
            "text": _plain("Follow authors"),
            "action_id": FOLLOW_AUTHORS,
            "value": follow,
        }
        blocks[-1]["elements"].append(button)
    return blocks


def clip_mrkdwn(text: str, limit: int = MAX_TEXT) -> str:
    """Already-escaped mrkdwn within `limit`: meta lines are short, so this only guards the limit."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _pack(groups: list[list[Block]], first_room: int, room: int) -> list[list[list[Block]]]:
    """Papers (block groups, a divider between two) packed into messages of at most `room` blocks."""
    parts: list[list[list[Block]]] = [[]]
    used = 0
    limit = first_room
    for group in groups:
        need = len(group) + (1 if parts[-1] else 0)
        if parts[-1] and used + need > limit:
            parts.append([])
            used, limit, need = 0, room, len(group)
        parts[-1].append(group)
        used += need
    return parts


def _join(groups: Iterable[list[Block]]) -> list[Block]:
    blocks: list[Block] = []
    for group in groups:
        if blocks:
            blocks.append(DIVIDER)
        blocks.extend(group)
    return blocks


def _fallback(lines: list[str], limit: int = MAX_FALLBACK) -> str:
    """Plain fallback text: as many lines as fit, then how many more there are (never silently cut)."""
    out: list[str] = []
    used = 0
    reserve = 40  # room for the "… and N more" line
    for n, line in enumerate(lines):
        last = n == len(lines) - 1
        if used + len(line) > (limit if last else limit - reserve):
            out.append(f"{ELLIPSIS} and {len(lines) - n} more")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def digest_messages(digest: Digest, settings: Settings) -> list[SlackMessage]:
    """The digest as one parent message and, when it needs more than 50 blocks, thread replies."""
    ctx = digest_context(digest)
    subject = ctx["subject"]
    header_text = subject if len(subject) <= MAX_HEADER else subject[: MAX_HEADER - 1].rstrip() + ELLIPSIS
    head: list[Block] = [{"type": "header", "block_id": "digest-header", "text": _plain(header_text)}]
    if header_text != subject:  # the whole subject stays readable just below a shortened header
        head.append(_context("digest-subject", clip(subject, MAX_TEXT)))
    edit = {
        "type": "button",
        "text": _plain("Edit this digest"),
        "action_id": EDIT_DIGEST,
        "value": edit_value(digest.subscription_id, settings),
    }
    head.append({"type": "actions", "block_id": "digest-edit", "elements": [edit]})
    if digest.links.view:  # the digest's own web page, and the archive of past ones
        view, past = link(digest.links.view, "View in browser"), link(digest.links.archive, "Past digests")
        head.append(_context("digest-links", f"{view} · {past}"))
    footer = _context(
        "digest-footer",
        "Rate each paper with its buttons to tune this channel's digest · "
        "`/paperboy list` shows this channel's subscriptions · "
        f"`/paperboy unsubscribe {digest.subscription_id}` stops this one",
    )
    groups = [paper_blocks(entry, digest, settings) for entry in ctx["items"]]
    if not groups:
        groups = [[_section("digest-empty", "No new papers matched this time.")]]
    # Room for papers: the head in the first message, a "part n of m" line in the others, the footer
    # in the last (reserved everywhere, since which message is last is known only after packing).
    parts = _pack(groups, MAX_BLOCKS - len(head) - 1, MAX_BLOCKS - 2)
    items = ctx["items"]
    messages: list[SlackMessage] = []
    first_rank = 1
    for index, part in enumerate(parts):
        papers = [g for g in part if str(g[0].get("block_id", "")).startswith("paper-")]
        ranks = f"{first_rank}–{first_rank + len(papers) - 1}" if papers else ""
        blocks: list[Block] = []
        if index == 0:
            blocks.extend(head)
        else:
            label = f"{escape(subject)} · part {index + 1} of {len(parts)}, papers {ranks} of {len(items)}"
            blocks.append(_context(f"digest-part-{index + 1}", label))
        blocks.extend(_join(part))
        if index == len(parts) - 1:
            blocks.append(footer)
        shown = items[first_rank - 1 : first_rank - 1 + len(papers)]
        lines = [
            f"{e['rank']}. {escape(e['title'])}" + (f" {escape(e['url'])}" if e["url"] else "") for e in shown
        ]
        intro = subject if index == 0 else f"{subject} (part {index + 1} of {len(parts)})"
        text = _fallback([escape(intro), *lines])
        message = SlackMessage(text=text, blocks=blocks)
        check_limits(message)
        messages.append(message)
        first_rank += len(papers)
    return messages


def check_limits(message: SlackMessage) -> None:
    """ValueError naming the block when a message breaks a Slack limit (a bug here, never data)."""
    problems: list[str] = []
    if not 1 <= len(message.blocks) <= MAX_BLOCKS:
        problems.append(f"{len(message.blocks)} blocks (1-{MAX_BLOCKS} allowed)")
    if not message.text or len(message.text) > MAX_FALLBACK:
        problems.append(f"fallback text of {len(message.text)} characters")
    for n, block in enumerate(message.blocks):
        texts = [block.get("text"), *(block.get("elements") or [])]
        for text in texts:
            if isinstance(text, dict) and text.get("type") == "button":
                if len(text["value"]) > 2000 or len(text["text"]["text"]) > 75:
                    problems.append(f"block {n}: button too long")
                continue
            if isinstance(text, dict):
                limit = MAX_HEADER if block["type"] == "header" else MAX_TEXT
                if not 0 < len(text["text"]) <= limit:
                    problems.append(f"block {n} ({block['type']}): text of {len(text['text'])} characters")
    if problems:
        raise ValueError("Slack message breaks Slack's limits: " + "; ".join(problems))
