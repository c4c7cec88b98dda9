"""Link unfurling: paper links pasted in a channel with a digest, answered with chat.unfurl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from slack_sdk.models.blocks import ActionsBlock, Block, ContextBlock, SectionBlock
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.channels import slack_subscriptions as channel_subs
from service.config import Settings
from service.models import Interest, Paper, utcnow
from service.slack_app.unfurl import paper_id_of
from service.web.app import create_app
from tests.slack.conftest import SIGNING_SECRET, make_settings
from tests.slack.fake_slack import FakeSlack, event_callback, signed_headers
from tests.slack.test_app import click

ABSTRACT = "We make <attention> sparse. " + "It works well at scale and everywhere. " * 20


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack) -> Settings:
    return make_settings(tmp_path, slack.api_url, semantic=False)


@pytest.fixture
def client(settings: Settings, committed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, committed_engine)) as test_client:
        yield test_client


@pytest.fixture
def paper_id(committed_engine: Engine, settings: Settings) -> int:
    with Session(committed_engine) as session, session.begin():
        request = channel_subs.SlackSubscribe(
            channel_id="C0001", interest="sparse attention", team_id="T0001"
        )
        channel_subs.subscribe(session, request, settings)
        paper = Paper(
            key="arxiv:2611.00042",
            arxiv_id="2611.00042",
            title="Sparse *attention* <!here>",
            abstract=ABSTRACT,
            authors=[f"Author {n}" for n in range(8)],
            first_seen_at=utcnow(),
        )
        session.add(paper)
        session.flush()
        return paper.id


def share(client: TestClient, channel: str, *urls: str) -> None:
    event = {
        "type": "link_shared",
        "channel": channel,
        "user": "U0001",
        "message_ts": "1700000000.000100",
        "links": [{"domain": url.split("/")[2], "url": url} for url in urls],
    }
    body = event_callback(event)
    assert (
        client.post("/slack/events", content=body, headers=signed_headers(body, SIGNING_SECRET)).status_code
        == 200
    )


def parse_unfurl(data: dict[str, Any]) -> list[Block]:
    blocks = [Block.parse(b) for b in data["blocks"]]
    assert all(b is not None and b.to_dict() == raw for b, raw in zip(blocks, data["blocks"], strict=True))
    assert 1 <= len(blocks) <= 50
    return [b for b in blocks if b is not None]


def test_known_paper_links_are_unfurled_with_title_authors_summary_and_a_button(
    client: TestClient, slack: FakeSlack, paper_id: int
) -> None:
    abs_url = "https://arxiv.org/abs/2611.00042v2"
    hf_url = "https://huggingface.co/papers/2611.00042"
    share(
        client,
        "C0001",
        abs_url,
        hf_url,
        "https://arxiv.org/abs/2611.99999",
        "https://evilarxiv.org/abs/2611.00042",
    )
    (call,) = slack.unfurls
    assert (call["channel"], call["ts"]) == ("C0001", "1700000000.000100")
    unfurls = call["unfurls"]
    assert set(unfurls) == {abs_url, hf_url}  # an unknown paper and a look-alike host are left alone
    section, context, actions = parse_unfurl(unfurls[abs_url])
    assert (
        isinstance(section, SectionBlock)
        and isinstance(context, ContextBlock)
        and isinstance(actions, ActionsBlock)
    )
    text = section.text.text
    assert text.startswith(f"*<{abs_url}|Sparse *attention* &lt;!here&gt;>*")
    assert text.endswith("\nWe make &lt;attention&gt; sparse.")  # the first sentence only
    assert context.elements[0].text == "Author 0, Author 1, Author 2, Author 3, Author 4, Author 5 et al."
    assert actions.elements[0].action_id == "paperboy_add_seed"


def test_links_in_a_channel_without_a_digest_are_not_unfurled(
    client: TestClient, slack: FakeSlack, paper_id: int
) -> None:
    share(client, "C0777", "https://arxiv.org/abs/2611.00042")
    assert slack.unfurls == []


def test_add_as_a_seed_from_an_unfurl(
    client: TestClient, slack: FakeSlack, paper_id: int, committed_engine: Engine
) -> None:
    share(client, "C0001", "https://arxiv.org/abs/2611.00042")
    button = json.loads(json.dumps(slack.unfurls[0]["unfurls"]))["https://arxiv.org/abs/2611.00042"][
        "blocks"
    ][-1]
    action = button["elements"][0]
    assert click(client, action, channel={"id": "C0001"}, response_url=slack.response_url).status_code == 200
    with Session(committed_engine) as session:
        assert [i.seeds for i in session.scalars(select(Interest))] == [[paper_id]]
    assert "as a seed" in slack.responses[-1]["text"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2611.00042v3", "2611.00042"),
        ("http://export.arxiv.org/pdf/2611.00042.pdf", "2611.00042"),
        ("https://huggingface.co/papers/2611.00042", "2611.00042"),
        ("https://hf.co/papers/2611.00042/", "2611.00042"),
        ("https://huggingface.co/papers/not-an-id", None),
        ("https://huggingface.co/models/2611.00042", None),
        ("https://arxiv.org.evil.example/abs/2611.00042", None),
        ("javascript:arxiv.org/abs/2611.00042", None),
    ],
)
def test_paper_links_are_recognised_by_host_and_path(url: str, expected: str | None) -> None:
    assert paper_id_of(url) == expected
