"""Finding 13: bidi overrides and zero-width characters never reach a page, an email or Slack."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.channels.slack_blocks import digest_messages
from service.config import Settings
from service.digest.render import render_digest_email
from service.display import CONTROLS
from service.links import feedback_url
from tests.slack.helpers import make_digest
from tests.web.helpers import add_paper, make_subscription

# "Invoice" shown as "...exe.pdf"-style spoof: RLO ... PDF, with zero-width spaces and a BOM inside.
SPOOF = "Sparse \u202eattention\u202c for free\u200b\u2066 fast\u2069\ufeff models\u200f"
SHOWN = "Sparse attention for free fast models"


def _controls_in(text: str) -> set[str]:
    return {f"U+{ord(c):04X}" for c in text if c in CONTROLS}


def test_a_spoofing_title_is_neutralised_in_pages(
    client: TestClient, web_settings: Settings, committed_engine: Engine
) -> None:
    ada = make_subscription(committed_engine, "ada@example.org")
    paper = add_paper(committed_engine, SPOOF)
    page = client.get(urlsplit(feedback_url(ada.id, paper, True, web_settings)).path)
    assert page.status_code == 200
    assert SHOWN in page.text
    assert _controls_in(page.text) == set()


def test_a_spoofing_title_is_neutralised_in_email_and_slack(web_settings: Settings) -> None:
    digest = make_digest(2, title=SPOOF, organization="Lab\u202e", topic="kv\u200b cache")
    email = render_digest_email(digest)
    for part in (email.subject, email.text, email.html):
        assert _controls_in(part) == set()
    assert SHOWN in email.html
    for message in digest_messages(digest, web_settings):
        text = message.text + json.dumps(message.blocks, ensure_ascii=False)
        assert _controls_in(text) == set()
        assert SHOWN in text
