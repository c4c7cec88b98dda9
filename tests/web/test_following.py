"""Follow people: followed authors reach the digest whatever their words, the name preview shows
namesakes, and "follow these authors" / "more like this" work in one idempotent click (SQLite and
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.authors import AUTHORS_INTEREST, follow_for, followed_authors, preview
from service.config import Settings
from service.db import session_scope
from service.digest.rank import rank_papers
from service.links import follow_url, manage_url
from service.matching.batch import BatchScreen, StoredInterest, load_interests
from service.models import Interest, Subscription
from tests.digest.helpers import add_paper, add_subscription
from tests.web.helpers import ADMIN_TOKEN, csrf_of

LEXICAL = Settings(_env_file=None, semantic=False)  # type: ignore[call-arg]
NOW = dt.datetime.now(dt.UTC)


def _papers(session: Session) -> dict[str, int]:
    rows = {
        "lecun": ("Energy-based models for galaxies", "Off topic astronomy.", ["LeCun, Y.", "Ada Lovelace"]),
        "yves": ("Sparse attention revisited", "Sparse attention again.", ["Yves LeCun"]),
        "words": ("Sparse attention for long context", "Sparse attention kernels.", ["Alan Turing"]),
        "other": ("Protein folding", "Biology.", ["Grace Hopper"]),
    }
    ids = {}
    for n, (key, (title, abstract, authors)) in enumerate(rows.items()):
        ids[key] = add_paper(
            session,
            f"arxiv:follow:{key}",
            title,
            abstract,
            authors=authors,
            seen=NOW - dt.timedelta(hours=n + 1),
        ).id
    return ids


def test_a_followed_author_is_in_the_digest_whatever_the_words(db: Session) -> None:
    ids = _papers(db)
    sub = db.get(Subscription, add_subscription(db, "ada@example.org", "sparse attention"))
    assert sub is not None
    papers = [
        p for p in db.scalars(__import__("sqlalchemy").select(__import__("service.models").models.Paper))
    ]
    before = rank_papers(db, sub.profile, papers, interests=list(sub.interests), settings=LEXICAL)
    assert ids["lecun"] not in [i.paper_id for i in before]

    assert follow_for(db, sub, ["Yann LeCun"]) == ["Yann LeCun"]
    assert follow_for(db, sub, ["LeCun, Yann"]) == []  # the same person: nothing new
    assert AUTHORS_INTEREST in sub.interests  # the subscription is limited to named interests
    db.expire_all()
    after = rank_papers(db, sub.profile, papers, interests=list(sub.interests), settings=LEXICAL)
    first = after[0]
    assert first.paper_id == ids["lecun"] and "LeCun, Y., whom you follow" in first.why
    chosen = [i.paper_id for i in after]
    assert ids["words"] in chosen  # words still work
    assert ids["other"] not in chosen
    # Yves LeCun's paper comes only for its words, never as the followed author's.
    yves = [i for i in after if i.paper_id == ids["yves"]]
    assert all("whom you follow" not in i.why for i in yves)


def test_the_batch_screen_never_rules_out_an_authors_only_interest(db: Session) -> None:
    _papers(db)
    sub = db.get(Subscription, add_subscription(db, "ada@example.org", "dark matter"))
    assert sub is not None
    follow_for(db, sub, ["Yann LeCun"])
    db.flush()
    stored = [s for s in load_interests(db, LEXICAL) if s.profile_id == sub.profile_id]
    screen = BatchScreen(
        [StoredInterest(s.profile_id, s.interest_id, s.name, s.updated_at, s.interest) for s in stored]
    )
    authors_row = next(i for i in sub.profile.interests if i.name == AUTHORS_INTEREST)
    assert screen.interest_may_match(authors_row.id, np.array([1, 2, 3]))


def test_the_preview_shows_every_spelling_so_namesakes_show(db: Session) -> None:
    ids = _papers(db)
    found = preview(db, "lecun")
    assert found.total == 2 and {p.id for p, _ in found.papers} == {ids["lecun"], ids["yves"]}
    assert dict(found.spellings) == {"LeCun, Y.": 1, "Yves LeCun": 1}
    assert [p.id for p, _ in preview(db, "Yann LeCun").papers] == [ids["lecun"]]


def _owner(engine: Engine, sub_id: int) -> int | None:
    with session_scope(engine) as session:
        return session.get(Subscription, sub_id).subscriber_id  # type: ignore[union-attr]


def test_follow_and_more_like_this_are_one_idempotent_click(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    with session_scope(committed_engine) as session:
        ids = _papers(session)
        sub_id = add_subscription(session, "ada@example.org", "sparse attention")
    owner = _owner(committed_engine, sub_id)
    authors = urlsplit(follow_url(owner, sub_id, ids["lecun"], "authors", web_settings)).path
    seed = urlsplit(follow_url(owner, sub_id, ids["other"], "seed", web_settings)).path

    for _ in range(2):  # clicking twice is harmless
        page = client.get(authors)
        assert page.status_code == 200 and "LeCun, Y." in page.text
        assert client.get(seed).status_code == 200
    assert "already followed" in page.text
    with session_scope(committed_engine) as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        assert followed_authors(sub.profile) == ["LeCun, Y.", "Ada Lovelace"]
        seeded = [i for i in sub.profile.interests if ids["other"] in (i.seeds or [])]
        assert [i.name for i in seeded] == ["sparse attention"]
        assert seeded[0].seeds.count(ids["other"]) == 1
    # Another subscriber's id in the token, or a feedback token: nothing happens.
    forged = urlsplit(follow_url((owner or 0) + 1, sub_id, ids["lecun"], "seed", web_settings)).path
    assert client.get(forged).status_code == 404


def test_the_authors_page_previews_follows_and_unfollows(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    with session_scope(committed_engine) as session:
        ids = _papers(session)
        sub_id = add_subscription(session, "ada@example.org", "sparse attention")
    manage = urlsplit(manage_url(_owner(committed_engine, sub_id), sub_id, web_settings)).path
    assert f'href="{manage}/authors"' in client.get(manage).text

    page = client.get(manage + "/authors", params={"name": "LeCun"})
    assert page.status_code == 200
    assert "2 stored papers by" in page.text and "Yves LeCun (1)" in page.text  # namesakes show
    token = csrf_of(page.text)
    saved = client.post(manage + "/authors", data={"csrf_token": token, "name": "Yann LeCun"})
    assert saved.status_code == 200 and "Stop following" in saved.text and "Yann LeCun" in saved.text
    bad = client.post(manage + "/authors", data={"csrf_token": token, "name": "  42  "})
    assert bad.status_code == 400 and "has no surname" in bad.text
    assert client.post(manage + "/authors", data={"name": "Someone Else"}).status_code == 403

    # The preferences form does not show (or drop) the followed authors.
    form_page = client.get(manage)
    assert "<legend>followed authors</legend>" not in form_page.text
    assert "whom you follow" in form_page.text  # the preview already brings their papers
    gone = client.post(manage + "/authors", data={"csrf_token": token, "unfollow": "Y. LeCun"})
    assert gone.status_code == 200 and "You follow no author yet" in gone.text
    with session_scope(committed_engine) as session:
        assert not session.query(Interest).filter(Interest.name == AUTHORS_INTEREST).count()
    assert ids


def test_the_admin_api_and_cli_follow_authors(client: TestClient, cli_env: Engine) -> None:
    from tests.cli import run_cli

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with session_scope(cli_env) as session:
        ids = _papers(session)
        sub_id = add_subscription(session, "ada@example.org", "sparse attention")

    found = client.get("/api/admin/authors/preview", params={"name": "LeCun, Yann"}, headers=auth).json()
    assert found["total"] == 1 and found["papers"][0]["paper_id"] == ids["lecun"]
    added = client.post(
        f"/api/admin/subscriptions/{sub_id}/authors", json={"names": ["Yann LeCun"]}, headers=auth
    )
    assert added.status_code == 200 and added.json()["added"] == ["Yann LeCun"]
    bad = client.post(f"/api/admin/subscriptions/{sub_id}/authors", json={"names": ["!!"]}, headers=auth)
    assert bad.status_code == 400 and "surname" in bad.json()["detail"]

    code, out = run_cli("authors", "follow", str(sub_id), "LeCun, Y.", "Grace Hopper")
    assert code == 0 and "already following: LeCun, Y." in out and "following: Grace Hopper" in out
    code, out = run_cli("authors", "list", str(sub_id))
    assert out.split("\n")[:2] == ["Yann LeCun", "Grace Hopper"]
    code, out = run_cli("authors", "preview", "lecun")
    assert code == 0 and "2 stored papers" in out and "Yves LeCun (1)" in out
    code, out = run_cli("authors", "unfollow", str(sub_id), "G. Hopper")
    assert code == 0 and "Grace Hopper" in out
    removed = client.delete(
        f"/api/admin/subscriptions/{sub_id}/authors", params={"name": "yann lecun"}, headers=auth
    )
    assert removed.json()["followed"] == []


def test_digests_carry_follow_links(
    client: TestClient, committed_engine: Engine, web_settings: Settings
) -> None:
    from tests.web.helpers import outbox, text_of
    from tests.web.test_archive import _deliver

    with session_scope(committed_engine) as session:
        add_paper(
            session,
            "arxiv:kv1",
            "KV cache eviction",
            "kv cache",
            authors=["LeCun, Y."],
            seen=NOW - dt.timedelta(hours=2),
        )
        sub_id = add_subscription(session, "ada@example.org", "kv cache")
    assert _deliver(committed_engine, sub_id, "2026-11-23", web_settings) == "sent"
    text = text_of(outbox(web_settings)[0])
    follow = re.search(r"Follow these authors: http://testserver(/follow/\S+)", text)
    assert follow and "More like this: http://testserver/follow/" in text
    view = re.search(r"View in browser: http://testserver(/digest/\S+)", text)
    assert view and "/follow/" in client.get(view.group(1)).text
    assert "LeCun, Y." in client.get(follow.group(1)).text
