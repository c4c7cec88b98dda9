"""A digest as Block Kit: valid, within Slack's limits, escaped, split into parts and never cut short."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock, HeaderBlock, SectionBlock

from service.channels.slack_blocks import (
    EDIT_DIGEST,
    FOLLOW_AUTHORS,
    MAX_TEXT,
    MORE_LIKE_THIS,
    NOT_RELEVANT,
    RELEVANT,
    SlackMessage,
    check_limits,
    clip,
    digest_messages,
    escape,
    excerpt,
    link,
)
from service.config import Settings
from service.digest.model import Segment
from service.tokens import TokenError, read_token
from tests.slack.conftest import make_settings
from tests.slack.helpers import make_digest, paper_ids, parse_message


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def payloads(digest_count: int, settings: Settings, **item: object) -> list[dict[str, object]]:
    return [
        {"text": m.text, "blocks": m.blocks}
        for m in digest_messages(make_digest(digest_count, **item), settings)
    ]


def test_a_short_digest_is_one_message_with_a_header_papers_and_buttons(settings: Settings) -> None:
    (message,) = payloads(3, settings)
    blocks = parse_message(message)
    assert isinstance(blocks[0], HeaderBlock)
    assert blocks[0].text.text == "3 new papers on sparse attention · Mon 23 Nov"
    assert paper_ids(blocks) == [1, 2, 3]
    section = next(b for b in blocks if isinstance(b, SectionBlock))
    assert section.text.text.startswith("*1. <https://arxiv.org/abs/2611.00001|Sparse attention, part 1>*")
    assert "We study *sparse attention* at scale." in section.text.text
    context = next(b for b in blocks if isinstance(b, ContextBlock) and b.block_id == "about-1")
    meta, why = (element.text for element in context.elements)
    assert meta == "Ada Lovelace, Alan Turing · Analytical Engines Ltd · 20 Nov 2026 · ▲ 7 upvotes"
    assert why == "Why: matched 'sparse attention'"
    assert "unsubscribe 1" in blocks[-1].elements[0].text  # the footer says how to stop it
    assert message["text"].startswith("3 new papers on sparse attention · Mon 23 Nov\n1. Sparse attention")


def test_buttons_carry_signed_values_for_this_subscription_paper_and_verdict(settings: Settings) -> None:
    (message,) = payloads(2, settings)
    actions = [b for b in parse_message(message) if isinstance(b, ActionsBlock)]
    assert [a.block_id for a in actions] == ["digest-edit", "feedback-1", "feedback-2"]
    (edit,) = actions[0].elements  # the parent message's "edit this digest"
    assert isinstance(edit, ButtonElement) and edit.action_id == EDIT_DIGEST
    edit_claims = read_token("slack-action", edit.value, settings=settings)
    assert (edit_claims.subscription_id, edit_claims.extra) == (1, {"edit": True})
    relevant, not_relevant, more = actions[2].elements
    assert isinstance(relevant, ButtonElement) and isinstance(not_relevant, ButtonElement)
    assert (relevant.action_id, not_relevant.action_id) == (RELEVANT, NOT_RELEVANT)
    claims = read_token("slack-action", relevant.value, settings=settings)
    assert (claims.subscription_id, claims.extra) == (1, {"paper": 2, "relevant": True})
    assert read_token("slack-action", not_relevant.value, settings=settings).extra["relevant"] is False
    assert isinstance(more, ButtonElement) and more.action_id == MORE_LIKE_THIS
    seed = read_token("slack-action", more.value, settings=settings)
    assert (seed.subscription_id, seed.extra) == (1, {"paper": 2, "seed": True})
    with pytest.raises(TokenError):  # scoped: not a web feedback link
        read_token("feedback", relevant.value, settings=settings)


def test_paper_text_is_escaped_and_cannot_mention_or_link(settings: Settings) -> None:
    (message,) = payloads(
        1,
        settings,
        title="<!channel> A & B > C <https://evil.example|click>",
        url="https://arxiv.org/abs/1?a=1&b=<2>|x",
        authors=["<@U123>", "Bob & Co"],
        why="matched <b>bold</b>",
        snippet=[Segment("x < y && "), Segment("z > w", hit=True)],
    )
    blocks = parse_message(message)
    section = next(b for b in blocks if isinstance(b, SectionBlock) and b.block_id == "paper-1")
    text = section.text.text
    assert "&lt;!channel&gt; A &amp; B &gt; C &lt;https://evil.example|click&gt;" in text
    assert "<https://arxiv.org/abs/1?a=1&amp;b=%3C2%3E%7Cx|" in text  # one link, the paper's
    assert text.count("<") == 1 and text.count(">") == 1
    assert "x &lt; y &amp;&amp; *z &gt; w*" in text
    assert section.text.verbatim is True  # no automatic mention or channel parsing
    about = next(b for b in blocks if isinstance(b, ContextBlock) and b.block_id == "about-1")
    assert about.elements[0].text.startswith("&lt;@U123&gt;, Bob &amp; Co")
    assert about.elements[1].text == "Why: matched &lt;b&gt;bold&lt;/b&gt;"
    assert "&lt;!channel&gt;" in message["text"] and "<!channel>" not in message["text"]


def test_a_javascript_url_is_not_linked(settings: Settings) -> None:
    (message,) = payloads(1, settings, url="javascript:alert(1)", code_url="data:text/html,x")
    text = next(b for b in parse_message(message) if isinstance(b, SectionBlock)).text.text
    assert text.startswith("*1. Sparse attention, part 1*") and "javascript" not in str(message)


@pytest.mark.parametrize("count", [1, 12, 13, 16, 40, 100])
def test_long_digests_are_split_into_parts_that_hold_every_paper_once_in_order(
    settings: Settings, count: int
) -> None:
    messages = payloads(count, settings, code_url="https://github.com/a/b")
    shown: list[int] = []
    for index, message in enumerate(messages):
        blocks = parse_message(message)
        shown += paper_ids(blocks)
        if index:
            label = blocks[0]
            assert isinstance(label, ContextBlock)
            assert f"part {index + 1} of {len(messages)}" in label.elements[0].text
            assert f"part {index + 1} of {len(messages)}" in str(message["text"])
        assert (blocks[-1].block_id == "digest-footer") == (index == len(messages) - 1)
    assert shown == list(range(1, count + 1))
    assert len(messages) == -(-count // 12)  # 12 papers (3 blocks + a divider each) fit in 50 blocks


def test_an_overlong_title_and_excerpt_are_shortened_visibly(settings: Settings) -> None:
    (message,) = payloads(
        1,
        settings,
        title="&" * 5000,
        snippet=[Segment("<" * 4000), Segment("hit " * 500, hit=True)],
        why="w" * 9000,
        authors=[f"Author {n}" for n in range(300)],
    )
    blocks = parse_message(message)  # every text within 3,000 characters
    section = next(b for b in blocks if isinstance(b, SectionBlock))
    assert section.text.text.count("…") == 2  # title and excerpt, each marked
    assert "Author 0, Author 1 et al." in str(blocks)


def test_a_long_topic_keeps_a_valid_header_and_shows_the_whole_subject(settings: Settings) -> None:
    topic = "graph neural networks for molecular property prediction " * 4
    (message,) = payloads(1, settings, topic=topic.strip())
    header, subject = parse_message(message)[:2]
    assert isinstance(header, HeaderBlock) and 140 <= len(header.text.text) <= 150
    assert header.text.text.endswith("…")
    assert isinstance(subject, ContextBlock) and topic.strip() in subject.elements[0].text


def test_an_empty_digest_says_so(settings: Settings) -> None:
    (message,) = payloads(0, settings)
    blocks = parse_message(message)
    assert blocks[0].text.text.startswith("No new papers on sparse attention")
    assert any(isinstance(b, SectionBlock) and b.block_id == "digest-empty" for b in blocks)


def test_the_fallback_text_lists_what_it_cannot_hold(settings: Settings) -> None:
    messages = payloads(12, settings, title="T" * 400)
    text = str(messages[0]["text"])
    assert len(text) <= 3000 and text.endswith("more")
    count = int(text.rsplit("… and ", 1)[1].split()[0])
    assert text.count("\n") - 1 + count == 12  # lines shown + "and N more" account for every paper


def test_escaping_helpers() -> None:
    assert escape("a & <b> & c") == "a &amp; &lt;b&gt; &amp; c"
    assert clip("&&&&", 12) == "&amp;&amp;…"  # never half an entity
    assert len(clip("x" * 5000, MAX_TEXT)) == MAX_TEXT
    assert link("https://a.example/?q=1&r=2", "t") == "<https://a.example/?q=1&amp;r=2|t>"
    assert excerpt([Segment("abc "), Segment("defgh", hit=True)], limit=8) == "abc *d*…"


def test_check_limits_refuses_what_slack_would() -> None:
    section = {"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "x"}}
    header = {"type": "header", "block_id": "h", "text": {"type": "plain_text", "text": "h" * 151}}
    long_text = {"type": "section", "block_id": "t", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    check_limits(SlackMessage("fallback", [section] * 50))
    for message in (
        SlackMessage("fallback", [section] * 51),
        SlackMessage("fallback", [header]),
        SlackMessage("fallback", [long_text]),
        SlackMessage("", [section]),
        SlackMessage("x" * 3001, [section]),
    ):
        with pytest.raises(ValueError, match="limits"):
            check_limits(message)


def test_the_rendered_digest_matches_the_golden_file(settings: Settings) -> None:
    """tests/slack/golden/digest.json pins the messages; PAPERBOY_UPDATE_GOLDEN=1 rewrites it."""
    digest = make_digest(
        2,
        code_url="https://github.com/ada/engine",
        pdf_url="https://arxiv.org/pdf/2611.00001",
        title="Speculative decoding & friends: a <survey>",
        authors=["Zoë Ünïcödé", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
        author_count=9,
    )
    messages = [{"text": m.text, "blocks": m.blocks} for m in digest_messages(digest, settings)]
    for message in messages:
        for block in message["blocks"]:
            for element in block.get("elements", []):
                if element.get("type") == "button":  # signed with a timestamp: checked, then pinned
                    read_token("slack-action", element["value"], settings=settings)
                    element["value"] = "<signed token>"
    rendered = json.dumps(messages, indent=2, ensure_ascii=False) + "\n"
    golden = Path(__file__).parent / "golden" / "digest.json"
    if os.environ.get("PAPERBOY_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


def test_follow_authors_is_offered_where_the_digest_offers_following(settings: Settings) -> None:
    digest = make_digest(2)
    links = dataclasses.replace(digest.links, follow={1: ("http://testserver/f/a", "http://testserver/f/s")})
    (message,) = digest_messages(dataclasses.replace(digest, links=links), settings)
    payload = {"text": message.text, "blocks": message.blocks}
    actions = {b.block_id: b for b in parse_message(payload) if isinstance(b, ActionsBlock)}
    first = [e.action_id for e in actions["feedback-1"].elements]
    assert first == [RELEVANT, NOT_RELEVANT, MORE_LIKE_THIS, FOLLOW_AUTHORS]
    assert FOLLOW_AUTHORS not in [e.action_id for e in actions["feedback-2"].elements]  # no follow link
    follow = actions["feedback-1"].elements[3]
    claims = read_token("slack-action", follow.value, settings=settings)
    assert (claims.subscription_id, claims.extra) == (1, {"paper": 1, "follow": "authors"})
