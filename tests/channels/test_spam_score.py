"""The mail paperboy sends does not look like spam: Debian's SpamAssassin scores each message below 1.0.

Each message is built exactly as it goes out (EmailChannel / send_confirmation_email into an outbox)
and scored offline (`spamassassin -L -t`, network tests off, no Bayes learning, its own home folder).
With CI=true a missing spamassassin is a failure; elsewhere the test skips and says how to install it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from service.channels.email import EmailChannel
from service.channels.smtp import OutboxTransport
from service.config import Settings
from service.digest.compose import build_digest
from service.digest.model import DigestItem, Segment
from service.ingest.parsers import parse
from service.ingest.reading import read_text_lines
from service.ingest.records import PaperRecord
from service.models import Subscriber, Subscription
from service.subscription import send_confirmation_email
from tests.conftest import IN_CI, REPO

pytestmark = pytest.mark.spamassassin
MAX_SCORE = 1.0
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
_STATUS = re.compile(
    r"^X-Spam-Status: \w+, score=(-?[0-9.]+) .*?tests=(.*?)(?:autolearn|version)=", re.M | re.S
)


def _spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        message = (
            "spamassassin is not installed (apt-get install -y spamassassin; the README test command does it)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def scores(messages: list[bytes], home: Path) -> list[tuple[float, str]]:
    """SpamAssassin's score of each message and the rules that fired: one run over an mbox, since
    starting spamassassin (loading and compiling its rules) costs seconds."""
    home.mkdir(exist_ok=True)
    mbox = b"".join(
        b"From paperboy@example.org Mon Nov 23 07:00:00 2026\n"
        + re.sub(rb"(?m)^From ", b">From ", message.replace(b"\r\n", b"\n"))
        + b"\n"
        for message in messages
    )
    result = subprocess.run(
        [_spamassassin(), "-L", "-t", "--mbox", "--cf=bayes_auto_learn 0", "--cf=use_bayes 0"],
        input=mbox,
        capture_output=True,
        timeout=280,
        env={**os.environ, "HOME": str(home)},  # its user_prefs and state go there, not in ~
        check=True,
    )
    found = _STATUS.findall(result.stdout.decode("utf-8", "replace"))
    assert len(found) == len(messages), result.stdout[-2000:]
    return [(float(points), " ".join(rules.split())) for points, rules in found]


def real_papers() -> list[PaperRecord]:
    """The sample dumps shipped with paperboy, as the parsers read them."""
    records: list[PaperRecord] = []
    for path, fmt in (("papers_sample.jsonl", "jsonl"), ("listing_sample.txt", "listing")):
        lines = read_text_lines(REPO / "samples" / "dumps" / path)
        records += [r for r in parse(fmt, lines, today=NOW.date()) if isinstance(r, PaperRecord)]
    assert len(records) >= 5
    return records


def items(count: int) -> list[DigestItem]:
    papers = real_papers()
    out = []
    for n in range(count):
        paper = papers[n % len(papers)]
        words = paper.abstract.split()
        out.append(
            DigestItem(
                paper_id=n + 1,
                title=paper.title if n < len(papers) else f"{paper.title} (revised {n // len(papers)})",
                url=paper.url or f"https://arxiv.org/abs/2611.{n + 10000:05d}",
                authors=list(paper.authors),
                author_count=paper.author_count,
                organization=paper.organization,
                published_on=paper.published_on,
                upvotes=paper.upvotes,
                code_url=None,
                score=0.9 - n / 100,
                why=f'matches "{words[1]}" and "{words[3]}"',
                snippet=[
                    Segment(" ".join(words[:3]) + " "),
                    Segment(words[3], hit=True),
                    Segment(" " + " ".join(words[4:40])),
                ],
                matched_terms=[words[3]],
                interest="efficient inference",
            )
        )
    return out


COUNTS = (0, 1, 10, 30)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[float, str]]:
    """The empty digest, digests of 1, 10 and 30 papers and the confirmation email, as sent, scored."""
    tmp = tmp_path_factory.mktemp("spam")
    settings = Settings(
        _env_file=None,
        var_dir=tmp / "var",
        base_url="https://paperboy.example.org",
        smtp_from="paperboy <digest@paperboy.example.org>",
        unsubscribe_mailto="unsubscribe@paperboy.example.org",
    )
    subscription = Subscription(
        id=7,
        subscriber_id=3,
        channel="email",
        address="ada@example.org",
        interests=["efficient inference"],
        cadence="daily",
        send_time=dt.time(8, 0),
        timezone="UTC",
    )
    channel = EmailChannel(settings, transport=OutboxTransport(tmp / "out"))
    messages = {
        f"digest of {count} papers": channel.digest_message(
            subscription, build_digest(subscription, "2026-11-23", items(count), now=NOW, settings=settings)
        ).data
        for count in COUNTS
    }
    send_confirmation_email(Subscriber(id=3, email="ada@example.org"), [subscription], settings=settings)
    [confirmation] = settings.resolved_outbox_dir.glob("*.eml")
    messages["confirmation email"] = confirmation.read_bytes()
    return dict(zip(messages, scores(list(messages.values()), tmp / "home"), strict=True))


@pytest.mark.parametrize("name", [*(f"digest of {count} papers" for count in COUNTS), "confirmation email"])
def test_mail_scores_below_one(scored: dict[str, tuple[float, str]], name: str) -> None:
    points, rules = scored[name]
    assert points < MAX_SCORE, f"{name}: SpamAssassin score {points} ({rules})"
