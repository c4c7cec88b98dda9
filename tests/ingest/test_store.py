"""Deduplication and updates in the papers table, on SQLite and PostgreSQL (rolled back per test)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.ingest.records import PaperRecord
from service.ingest.store import PaperStore
from service.models import Paper, utcnow
from tests.ingest.helpers import fixture, parse_file


def store_file(db: Session, name: str, batch_size: int = 1000) -> PaperStore:
    records, _, _ = parse_file(fixture(name))
    store = PaperStore(db, name, utcnow(), batch_size=batch_size)
    store.add_all(records)
    return store


def papers(db: Session) -> list[Paper]:
    db.expire_all()
    return list(db.scalars(select(Paper).order_by(Paper.id)))


def test_a_paper_seen_in_every_format_is_stored_once_and_gains_metadata(db: Session) -> None:
    listing = store_file(db, "listing_small.txt")
    assert (listing.counts.new, listing.counts.updated, listing.counts.duplicate) == (3, 0, 0)
    (widgets,) = [p for p in papers(db) if p.title == "Sparse Widgets for Everyone"]
    assert widgets.key == "title:sparse widgets for everyone" and widgets.arxiv_id is None

    feed = store_file(db, "arxiv_feed.xml")  # brings the arXiv id (v2) of the same title
    assert (feed.counts.new, feed.counts.updated) == (1, 1)  # the old-style id paper is new
    hf = store_file(db, "hf_daily_papers.json")  # same id without version: upvotes 21
    assert (hf.counts.new, hf.counts.updated) == (2, 1)
    page = store_file(db, "daily_page_small.txt")  # title only again: upvotes 12, date
    assert (page.counts.new, page.counts.updated) == (2, 2)
    jsonl = store_file(db, "papers.jsonl")  # id with v3: upvotes 30
    assert (jsonl.counts.new, jsonl.counts.updated) == (2, 1)

    widgets_rows = [p for p in papers(db) if "sparse widgets" in p.title.lower()]
    assert len(widgets_rows) == 1
    widgets = widgets_rows[0]
    assert widgets.arxiv_id == "2401.01234"
    assert widgets.key == "title:sparse widgets for everyone"  # the first key stays
    assert widgets.upvotes == 30  # the latest dump's figure
    assert widgets.published_on == dt.date(2024, 1, 9)
    assert widgets.authors == ["Ada Example", "Bo Sample"] and widgets.author_count == 2
    assert widgets.code_url == "https://github.com/example-lab/sparse-widgets"
    assert widgets.source == "listing_small.txt"  # where it was first seen
    assert widgets.links[0] == "https://github.com/example-lab/sparse-widgets"
    assert "https://arxiv.org/abs/2312.09876" in widgets.links

    lanterns = [p for p in papers(db) if p.title.startswith("Lanterns")]
    assert len(lanterns) == 1 and lanterns[0].arxiv_id == "2403.04567" and lanterns[0].upvotes == 7


def test_the_same_records_twice_are_duplicates(db: Session) -> None:
    store_file(db, "daily_page_small.txt")
    again = store_file(db, "daily_page_small.txt")
    assert (again.counts.new, again.counts.updated, again.counts.duplicate) == (0, 0, 4)
    assert len(papers(db)) == 4


def test_repeats_inside_one_file_and_across_batches(db: Session) -> None:
    records = [PaperRecord(f"Paper {i % 5}", "Abstract.", upvotes=i) for i in range(12)]
    store = PaperStore(db, "t", utcnow(), batch_size=4)
    counts = store.add_all(records)
    assert (counts.new, counts.updated, counts.duplicate) == (5, 7, 0)  # upvotes change every time
    rows = papers(db)
    assert len(rows) == 5
    # The last record for each paper wins: Paper 0 was last seen with i=10, Paper 4 with i=9.
    assert {p.title: p.upvotes for p in rows} == {
        "Paper 0": 10,
        "Paper 1": 11,
        "Paper 2": 7,
        "Paper 3": 8,
        "Paper 4": 9,
    }


def test_arxiv_versions_are_one_paper_and_different_ids_with_one_title_are_two(db: Session) -> None:
    store = PaperStore(db, "t", utcnow())
    store.add_all(
        [
            PaperRecord("Attention", "A.", arxiv_id="2401.00001"),
            PaperRecord("attention!", "B.", arxiv_id="2401.00001", upvotes=3),  # same id, new metadata
            PaperRecord("Attention", "C.", arxiv_id="2402.00002"),  # another paper with that title
            PaperRecord("Attention", "D."),  # title only: joins the first one
        ]
    )
    assert (store.counts.new, store.counts.updated, store.counts.duplicate) == (2, 1, 1)
    rows = papers(db)
    assert [(p.arxiv_id, p.upvotes, p.abstract) for p in rows] == [
        ("2401.00001", 3, "A."),
        ("2402.00002", None, "C."),
    ]


def test_a_missing_value_never_erases_a_stored_one(db: Session) -> None:
    store = PaperStore(db, "t", utcnow())
    store.add_all([PaperRecord("P", "A.", upvotes=4, organization="Org", published_on=dt.date(2024, 1, 1))])
    store.add_all([PaperRecord("P", "A.")])
    (paper,) = papers(db)
    assert (paper.upvotes, paper.organization, paper.published_on) == (4, "Org", dt.date(2024, 1, 1))
    assert store.counts.duplicate == 1


def test_insert_of_an_existing_key_merges_instead_of_failing(db: Session) -> None:
    # The ON CONFLICT path: what a concurrent ingest of the same paper runs into.
    store = PaperStore(db, "t", utcnow())
    store.add_all([PaperRecord("Race", "A.", arxiv_id="2401.00009")])
    row = store._new_row(PaperRecord("Race", "A.", arxiv_id="2401.00009", upvotes=8), "race")
    store._insert([row])
    (paper,) = papers(db)
    assert paper.upvotes == 8
    assert db.scalar(select(func.count()).select_from(Paper)) == 1
