"""Builders and checks shared by the Slack tests: digests, and Block Kit validation of payloads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_sdk.models.blocks import Block, HeaderBlock

from service.digest.model import Digest, DigestItem, DigestLinks, Segment

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # a Monday


def make_item(paper_id: int, **overrides: Any) -> DigestItem:
    values: dict[str, Any] = {
        "paper_id": paper_id,
        "title": f"Sparse attention, part {paper_id}",
        "url": f"https://arxiv.org/abs/2611.{paper_id:05d}",
        "authors": ["Ada Lovelace", "Alan Turing"],
        "author_count": 2,
        "organization": "Analytical Engines Ltd",
        "published_on": dt.date(2026, 11, 20),
        "upvotes": 7,
        "code_url": None,
        "score": 0.9,
        "why": "matched 'sparse attention'",
        "snippet": [Segment("We study "), Segment("sparse attention", hit=True), Segment(" at scale.")],
        "matched_terms": ["sparse attention"],
        "interest": "sparse attention",
    }
    values.update(overrides)
    return DigestItem(**values)


def make_digest(
    count: int, *, subscription_id: int = 1, topic: str = "sparse attention", **item: Any
) -> Digest:
    return Digest(
        subscription_id=subscription_id,
        period="2026-11-23",
        topic=topic,
        items=[make_item(n, **item) for n in range(1, count + 1)],
        links=DigestLinks(
            manage="http://testserver/m", unsubscribe="http://testserver/u", unsubscribe_post="x"
        ),
        generated_at=NOW,
    )


def _text_objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            found.append(node)
        for value in node.values():
            found.extend(_text_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_text_objects(value))
    return found


def parse_message(payload: dict[str, Any]) -> list[Block]:
    """The payload's blocks parsed back into slack_sdk's models, checked against Slack's limits."""
    raw = payload["blocks"]
    assert isinstance(raw, list) and 1 <= len(raw) <= 50, f"{len(raw)} blocks"
    assert isinstance(payload.get("text"), str) and payload["text"].strip(), "no fallback text"
    assert len(payload["text"]) <= 3000
    blocks: list[Block] = []
    for data in raw:
        block = Block.parse(data)
        assert block is not None, f"unknown block {data}"
        assert block.to_dict() == data  # validates (raises on a broken limit) and loses nothing
        blocks.append(block)
    for text in _text_objects(raw):
        assert 0 < len(text["text"]) <= 3000, text
    for block in blocks:
        if isinstance(block, HeaderBlock):
            assert len(block.text.text) <= 150
    ids = [b.block_id for b in blocks if b.block_id]
    assert len(ids) == len(set(ids)), "block ids must be unique in a message"
    return blocks


def paper_ids(blocks: list[Block]) -> list[int]:
    """The papers a message shows, in order (from their section block ids)."""
    return [int(b.block_id.split("-", 1)[1]) for b in blocks if (b.block_id or "").startswith("paper-")]


def parse_view(data: dict[str, Any]) -> Any:
    """A modal or Home tab parsed back into slack_sdk's View, checked against Slack's limits."""
    from slack_sdk.models.blocks import InputBlock
    from slack_sdk.models.views import View

    view = View(**data)
    rendered = view.to_dict()  # validates every field slack_sdk knows a limit for
    assert rendered["type"] == data["type"] and len(rendered["blocks"]) == len(data["blocks"])
    assert 1 <= len(data["blocks"]) <= 100, f"{len(data['blocks'])} blocks"
    for text in _text_objects(data["blocks"]):
        assert 0 < len(text["text"]) <= 3000, text
    for block in view.blocks or []:
        if isinstance(block, InputBlock):
            assert len(block.label.text) <= 150, block.label.text
        if isinstance(block, HeaderBlock):
            assert len(block.text.text) <= 150
    if data["type"] == "modal":
        assert len(data["title"]["text"]) <= 24 and len(data.get("private_metadata") or "") <= 3000
    ids = [b.block_id for b in view.blocks or [] if b.block_id]
    assert len(ids) == len(set(ids)), "block ids must be unique in a view"
    return view


def submitted_state(view: dict[str, Any], **values: str | None) -> dict[str, Any]:
    """`view.state.values` as Slack sends it on submit: each input's initial value, or the one given."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        given = values.get(block["block_id"], element.get("initial_value") or element.get("initial_time"))
        if kind == "static_select":
            chosen = values.get(block["block_id"]) or element["initial_option"]["value"]
            option = next(o for o in element["options"] if o["value"] == chosen)
            entry: dict[str, Any] = {"type": kind, "selected_option": option}
        elif kind == "timepicker":
            entry = {"type": kind, "selected_time": given}
        else:
            entry = {"type": kind, "value": given}
        state[block["block_id"]] = {element["action_id"]: entry}
    return state
