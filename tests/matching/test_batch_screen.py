"""The batch screen never rules out a profile the ranker would give papers, and does rule out others."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from sqlalchemy.orm import Session

from service.config import Settings
from service.digest.rank import rank_papers
from service.matching import batch as batch_screen
from service.matching.batch import BatchScreen, ScreenedRanker, StoredInterest, evidence_form, load_interests
from service.matching.interests import Interest, compile_interest
from service.matching.ranking import MatchContext, rank
from service.models import Feedback, Paper, Profile
from service.models import Interest as InterestRow

from .corpus import PAPERS
from .test_percolator import WORDS, random_interests

LEXICAL = Settings(_env_file=None, semantic=False)
EDITED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def transient_papers() -> dict[str, Paper]:
    return {
        doc.id: Paper(id=n, title=doc.title, abstract=doc.abstract, authors=list(doc.authors))
        for n, doc in enumerate(PAPERS, 1)
    }


def _interests_not_to_cut(seed: int, rng: random.Random) -> list[Interest]:
    """Random interests, and some with wildcards in a query or exclusion, some with seeds: the cases the
    screen must not cut."""
    return [
        *(interest for _, interest in random_interests(seed, 60)),
        Interest("w1", "attention", query=f"quantiz* OR {rng.choice(WORDS)}"),
        Interest("w2", "attention, memory", exclude=["quantiz*"]),
        Interest("w3", "galaxy", query="NOT quantiz*"),
        Interest("s1", "", seeds=["p1"]),
        Interest("s2", "dark matter", liked=["p2"]),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_screen_keeps_every_interest_the_ranker_would_send_papers(seed: int) -> None:
    rng = random.Random(seed)
    interests = _interests_not_to_cut(seed, rng)
    papers = transient_papers()
    stored = [StoredInterest(1, n, i.name, EDITED, i) for n, i in enumerate(interests)]
    screen = BatchScreen(stored)
    ruled_out = 0
    for _ in range(8):
        subset = rng.sample(PAPERS, rng.randint(2, len(PAPERS)))
        screen.screen(papers[doc.id] for doc in subset)
        context = MatchContext(subset)
        ids = [papers[doc.id].id for doc in subset]
        for n, interest in enumerate(interests):
            sent = rank(compile_interest(interest), context, top_k=len(PAPERS))
            kept = screen.interest_may_match(n, np.array(ids))
            assert kept or not sent, (interest, [m.paper_id for m in sent])
            ruled_out += not kept
    assert ruled_out > 0  # it is a screen, not a pass-through


@pytest.mark.parametrize("seed", range(3))
def test_papers_in_blocks_and_few_kept_pairs_change_nothing_a_pool_sees(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    interests = [interest for _, interest in random_interests(seed, 60)]
    papers = transient_papers()
    for n, paper in enumerate(papers.values()):
        paper.first_seen_at = EDITED + dt.timedelta(hours=n)
    stored = [StoredInterest(1, n, i.name, EDITED, i) for n, i in enumerate(interests)]
    whole = BatchScreen(stored)
    whole.screen(papers.values())
    monkeypatch.setattr(batch_screen, "PAIRS_PER_BLOCK", 1)  # one paper per percolation
    monkeypatch.setattr(batch_screen, "HITS_KEPT", 5)  # pairs dropped after the first few
    small = BatchScreen(stored)
    small.screen(papers.values())
    assert not small._complete and whole._complete
    ordered = sorted(papers.values(), key=lambda p: p.first_seen_at)
    for at in range(len(ordered)):  # every pool a pass can have: the papers seen after a window start
        pool = ordered[at:]
        ids = np.array([p.id for p in pool], dtype=np.int64)
        exact = whole.wanted_interests(ids)
        assert whole.wanted_since(pool[0].first_seen_at) == exact
        assert small.wanted_since(pool[0].first_seen_at) == exact
        for n in range(len(interests)):  # per subscription: broader, never narrower
            assert small.interest_may_match(n, ids) or not whole.interest_may_match(n, ids)
    assert len(whole.wanted_since(ordered[-1].first_seen_at)) < len(
        whole.wanted_since(ordered[0].first_seen_at)
    )


def test_what_the_screen_can_and_cannot_rule_out() -> None:
    assert evidence_form(compile_interest(Interest("k", "kv cache"))) is not None
    assert evidence_form(compile_interest(Interest("s", "kv cache", seeds=["p1"]))) is None
    assert evidence_form(compile_interest(Interest("l", "kv cache", liked=["p1"]))) is None
    form = evidence_form(compile_interest(Interest("q", "memory", query="quantiz* AND NOT graph")))
    assert form is not None and form.query is None  # the wildcard query is left to the ranker
    form = evidence_form(compile_interest(Interest("x", "memory", exclude=["quantiz*", "graph"])))
    assert form is not None and len(form.exclude) == 1


def _profile(db: Session, name: str, **interest: object) -> Profile:
    profile = Profile(name=name, interests=[InterestRow(name="main", **interest)])
    db.add(profile)
    db.flush()
    return profile


def _store_papers(db: Session) -> dict[str, Paper]:
    papers = {
        doc.id: Paper(
            key=f"title:{doc.id}", title=doc.title, abstract=doc.abstract, authors=list(doc.authors)
        )
        for doc in PAPERS
    }
    db.add_all(papers.values())
    db.flush()
    return papers


def test_screened_ranker_gives_what_the_ranker_gives(db: Session) -> None:
    papers = _store_papers(db)
    batch = [papers[k] for k in ("p1", "p2", "p3", "p4")]  # attention, kv cache, quantization
    words = _profile(db, "words", keywords="sparse attention")
    galaxies = _profile(db, "galaxies", keywords="galaxy rotation, dark matter")
    seeds = _profile(db, "seeds", seeds=[papers["p3"].id])
    liked = _profile(db, "liked", keywords="graph neural network")
    db.add(Feedback(profile_id=liked.id, paper_id=papers["p1"].id, relevant=True))
    db.flush()
    db.expire_all()
    ranker = ScreenedRanker(LEXICAL, build_after=1)
    for profile in (words, galaxies, seeds, liked):
        got = ranker(db, profile, batch, interests=None)
        assert got == rank_papers(db, profile, batch, interests=None, settings=LEXICAL), profile.name
    assert ranker.skipped == 1  # only "galaxies": no word of it in the batch, no seeds
    assert rank_papers(db, seeds, batch, interests=None, settings=LEXICAL)  # seed-only: still ranked


def test_profiles_edited_after_the_screen_was_built_are_ranked(db: Session) -> None:
    papers = _store_papers(db)
    batch = [papers["p1"], papers["p2"]]
    profile = _profile(db, "later", keywords="galaxy")
    screen = BatchScreen(load_interests(db, LEXICAL))
    assert not screen.may_match(profile, batch, None)
    profile.interests[0].keywords = "kv cache"
    profile.interests[0].updated_at = EDITED  # what the ORM's onupdate does on flush, made explicit
    db.flush()
    assert screen.may_match(profile, batch, None)
    newcomer = _profile(db, "newcomer", keywords="galaxy")
    assert screen.may_match(newcomer, batch, None)  # unknown to the screen: never ruled out


def test_interest_selection_is_respected(db: Session) -> None:
    papers = _store_papers(db)
    batch = [papers["p1"], papers["p4"]]
    profile = Profile(
        name="two",
        interests=[
            InterestRow(name="space", keywords="galaxy"),
            InterestRow(name="attn", keywords="attention"),
        ],
    )
    db.add(profile)
    db.flush()
    screen = BatchScreen(load_interests(db, LEXICAL))
    assert screen.may_match(profile, batch, None)
    assert screen.may_match(profile, batch, ["attn"])
    assert not screen.may_match(profile, batch, ["space"])
    space, attn = profile.interests
    assert screen.wanted_interests(np.array([papers["p1"].id])) == {attn.id}
    screen.screen([papers["p5"]])  # the galaxy paper
    assert screen.wanted_interests(np.array([papers["p5"].id])) == {space.id}
    assert screen.may_match(profile, [papers["p5"]], ["space"])


def test_screen_is_built_late_and_rebuilt_when_old(db: Session) -> None:
    papers = _store_papers(db)
    batch = [papers["p1"], papers["p2"]]
    galaxies = _profile(db, "galaxies", keywords="galaxy")
    ranker = ScreenedRanker(LEXICAL, build_after=2, max_age=dt.timedelta(0))
    assert ranker(db, galaxies, batch, interests=None) == [] and ranker.skipped == 0  # ranked: too early
    assert ranker(db, galaxies, batch, interests=None) == [] and ranker.skipped == 1
    later = _profile(db, "later", keywords="dark matter")
    assert ranker(db, later, batch, interests=None) == [] and ranker.skipped == 2  # rebuilt: known now
    with_words = _profile(db, "words", keywords="kv cache")
    assert ranker(db, with_words, batch, interests=None) and ranker.skipped == 2


@pytest.mark.parametrize("seed", range(3))
def test_a_pool_screened_by_its_own_index_keeps_every_interest_the_ranker_would_send_papers(
    seed: int,
) -> None:
    rng = random.Random(seed)
    interests = _interests_not_to_cut(seed, rng)
    ruled_out = 0
    for _ in range(8):
        context = MatchContext(rng.sample(PAPERS, rng.randint(2, len(PAPERS))))
        for interest in interests:
            compiled = compile_interest(interest)
            sent = rank(compiled, context, top_k=len(PAPERS))
            kept = batch_screen.may_want(compiled, context.index)
            assert kept or not sent, (interest, [m.paper_id for m in sent])
            ruled_out += not kept
    assert ruled_out > 0


def test_an_interest_that_follows_authors_is_never_ruled_out_by_its_words(db: Session) -> None:
    papers = _store_papers(db)
    author = papers["p1"].authors[0]
    follows = _profile(db, "follows", keywords="galaxy rotation", authors=[author])
    assert evidence_form(compile_interest(Interest("a", "galaxy rotation", authors=(author,)))) is None
    context = MatchContext([PAPERS[0]])
    assert not batch_screen.may_want(compile_interest(Interest("k", "galaxy rotation")), context.index)
    assert batch_screen.may_want_from(follows, None, context.index, LEXICAL)
    ranker = ScreenedRanker(LEXICAL, build_after=1)
    got = ranker(db, follows, [papers["p1"], papers["p2"]], interests=None)
    assert [item.paper_id for item in got] == [papers["p1"].id] and ranker.skipped == 0
