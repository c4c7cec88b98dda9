"""Data that arrives whole: arXiv ids from the usual fields and forms, author names without
affiliation markers, and LaTeX shown as text in every channel while the stored original stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.latex import readable, readable_segments
from service.digest.model import Segment
from service.digest.rank import rank_papers
from service.ingest.normalize import clean_author_names
from service.ingest.parsers.jsonl import parse_jsonl
from service.ingest.records import PaperRecord
from tests.conftest import shared_path
from tests.digest.helpers import add_paper
from tests.digest.test_subscribe_queries import LEXICAL


def _records(*objects: dict[str, object]) -> list[PaperRecord]:
    lines = [json.dumps({"title": "A title", "abstract": "An abstract.", **o}) + "\n" for o in objects]
    return [item for item in parse_jsonl(lines) if isinstance(item, PaperRecord)]


def test_arxiv_ids_are_read_from_the_usual_fields_and_forms() -> None:
    records = _records(
        {"id": "arXiv:0704.0001"},
        {"id": "hep-th/9901001"},
        {"entry_id": "http://arxiv.org/abs/hep-th/9901001v2"},
        {"url": "https://arxiv.org/abs/2401.01234v3"},
        {"arxivId": "2401.01234"},
        {"id": "17"},  # an id that is not an arXiv id is passed over, not an error
    )
    assert [r.arxiv_id for r in records] == [
        "0704.0001",
        "hep-th/9901001",
        "hep-th/9901001",
        "2401.01234",
        "2401.01234",
        None,
    ]
    assert records[0].url == "https://arxiv.org/abs/0704.0001"
    assert records[1].url == "https://arxiv.org/abs/hep-th/9901001"


def test_the_shared_dev_papers_arrive_with_their_arxiv_ids() -> None:
    path = shared_path("eval", "dev", "papers.jsonl")
    if not Path(path).is_file():
        pytest.skip("../shared/eval/dev is not beside the checkout")
    with open(path, encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(20)]
    records = [item for item in parse_jsonl(lines) if isinstance(item, PaperRecord)]
    assert len(records) == 20
    assert records[0].arxiv_id == "0704.0001"
    assert all(r.arxiv_id and r.url == f"https://arxiv.org/abs/{r.arxiv_id}" for r in records)


def test_author_names_lose_their_affiliation_markers_at_ingest() -> None:
    (record,) = _records(
        {
            "authors": [
                "John Doe (1)",
                "Jane Roe (1, 2)",
                "Al Bo (1 and 2)",
                "Cy Dee1,2",
                "Ed Fox*",
                "Ian Jo ((1) MIT, (2) Caltech))",
                "(3)",
                "Zoë Ünïcödé",
            ]
        }
    )
    assert record.authors == ["John Doe", "Jane Roe", "Al Bo", "Cy Dee", "Ed Fox", "Ian Jo", "Zoë Ünïcödé"]
    assert clean_author_names(["Ada Lovelace"]) == ["Ada Lovelace"]


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        ('Schr\\"odinger equations', "Schrödinger equations"),
        ("{\\it linear} time", "linear time"),
        ("the $\\alpha$-stable law", "the α-stable law"),
        ("$(k,\\ell)$-sparse graphs", "(k,ℓ)-sparse graphs"),
        ("C. Bal\\'azs and Erd\\H{o}s", "C. Balázs and Erdős"),
        ("{G}aussian processes", "Gaussian processes"),
        ("\\mathcal{N}=4 SYM", "𝒩=4 SYM"),
        # Plain text that only looks like LaTeX stays as written.
        ("costs $5 and $10, 50% of R&D, ~10 runs", "costs $5 and $10, 50% of R&D, ~10 runs"),
        ("no latex at all", "no latex at all"),
    ],
)
def test_latex_is_shown_as_readable_text(latex: str, text: str) -> None:
    assert readable(latex) == text


def test_a_highlight_inside_math_does_not_break_it() -> None:
    segments = [
        Segment("the $\\"),
        Segment("alpha", hit=True),
        Segment("$-stable law of "),
        Segment("x", True),
    ]
    assert [(s.text, s.hit) for s in readable_segments(segments)] == [
        ("the α-stable law of ", False),
        ("x", True),
    ]


def test_digest_items_show_latex_as_text_link_abstract_and_pdf_and_keep_the_stored_original(
    db: Session,
) -> None:
    from service.channels.slack_blocks import digest_messages
    from service.digest.compose import build_digest
    from service.digest.render import render_digest_email
    from service.subscription import SubscriptionRequest, create_subscription
    from tests.digest.helpers import NOW

    sub = create_subscription(db, SubscriptionRequest(email="a@example.org", interests=["solitons"]))
    title = 'Stable solitons of the Schr\\"odinger equation with {\\it linear} $\\alpha$-potential'
    paper = add_paper(
        db,
        "arxiv:0704.0001",
        title,
        'We show that the Schr\\"odinger equation with an $\\alpha$-stable potential has solitons.',
        arxiv_id="0704.0001",
        url=None,
        authors=["C. Bal\\'azs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"],
        author_count=4,
    )
    (item,) = rank_papers(db, sub.profile, [paper], settings=LEXICAL)
    assert item.title == "Stable solitons of the Schrödinger equation with linear α-potential"
    assert item.authors[0] == "C. Balázs"
    assert "\\" not in "".join(s.text for s in item.snippet) and "α-stable" in "".join(
        s.text for s in item.snippet
    )
    assert (item.url, item.pdf_url) == ("https://arxiv.org/abs/0704.0001", "https://arxiv.org/pdf/0704.0001")
    assert paper.title == title  # the stored original is kept
    # A paper stored with only an arXiv link (before ids were read from it) gets its PDF link too.
    linked = add_paper(
        db, "title:linked", "Solitons again", "Solitons.", url="https://arxiv.org/abs/0704.0002v2"
    )
    (again,) = rank_papers(db, sub.profile, [linked], settings=LEXICAL)
    assert (again.url, again.pdf_url) == (
        "https://arxiv.org/abs/0704.0002",
        "https://arxiv.org/pdf/0704.0002",
    )

    settings = Settings(_env_file=None, base_url="https://paperboy.example")  # type: ignore[call-arg]
    digest = build_digest(sub, "2026-11-23", [item], now=NOW, settings=settings)
    email = render_digest_email(digest)
    slack = json.dumps([m.blocks for m in digest_messages(digest, settings)], ensure_ascii=False)
    for shown in (email.text, email.html, slack):
        assert "Schrödinger" in shown and "Schr\\" not in shown
        assert "https://arxiv.org/pdf/0704.0001" in shown
        assert "C. Balázs, E. L. Berger et al." in shown
