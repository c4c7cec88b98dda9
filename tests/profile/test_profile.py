"""Profiles: stored, exported and imported losslessly; bad input named precisely."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from service.models import Paper, Subscriber
from service.profile import (
    ProfileError,
    apply_spec,
    dump_spec,
    get_profile,
    load_specs,
    record_feedback,
    resolve_paper,
    to_spec,
)


def _papers(db: Session) -> list[Paper]:
    papers = [
        Paper(
            key="arxiv:2401.01234", title_key="a", arxiv_id="2401.01234", title="Sparse Attention at Scale"
        ),
        Paper(key="title:kv", title="KV-Cache Compression for LLaMA-2"),
    ]
    db.add_all(papers)
    db.add(Subscriber(email="ada@example.org"))
    db.flush()
    return papers


YAML = """
name: ada
subscriber: ada@example.org
interests:
  - name: efficient attention
    keywords: '"sparse attention"^2, kv cache, linear attention'
    query: 'title:(attention AND sparse*) NOT survey'
    exclude: survey, benchmark
    seeds: ["2401.01234v2", "KV-Cache Compression for LLaMA-2"]
    threshold: 0.2
    top_k: 5
relevant: ["2401.01234"]
"""


def test_import_export_round_trip(db: Session) -> None:
    sparse, kv = _papers(db)
    (spec,) = load_specs(YAML, "ada.yaml")
    profile = apply_spec(db, spec)
    interest = profile.interests[0]
    assert interest.seeds == [sparse.id, kv.id]
    assert interest.exclude == "survey, benchmark"
    assert profile.subscriber is not None and profile.subscriber.email == "ada@example.org"
    assert [(f.paper_id, f.relevant) for f in profile.feedback] == [(sparse.id, True)]

    exported = dump_spec(to_spec(db, profile), "yaml")
    (again,) = load_specs(exported, "export")
    assert again == to_spec(db, profile)
    # Importing twice replaces, never duplicates.
    apply_spec(db, again)
    assert len(get_profile(db, "ada").interests) == 1
    assert '"name": "ada"' in dump_spec(again, "json")


def test_seed_by_id_arxiv_and_title(db: Session) -> None:
    sparse, kv = _papers(db)
    assert resolve_paper(db, str(kv.id)).id == kv.id
    assert resolve_paper(db, f"paper:{sparse.id}").id == sparse.id
    assert resolve_paper(db, "arXiv:2401.01234v3").id == sparse.id
    assert resolve_paper(db, "kv-cache compression for llama-2").id == kv.id
    with pytest.raises(ProfileError, match="'No Such Paper'"):
        resolve_paper(db, "No Such Paper")


def test_malformed_query_points_at_position(db: Session) -> None:
    _papers(db)
    (spec,) = load_specs(YAML.replace("NOT survey'", "AND (survey'"), "ada.yaml")
    with pytest.raises(ProfileError, match="query"):
        apply_spec(db, spec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "line 1"),
        ("name: ada\ninterests:\n  - name: x\n    top_k: 0\n", "interests.0.top_k"),
        ("name: ada\ncolour: blue\n", "colour"),
    ],
)
def test_bad_profile_files_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ProfileError, match=expected):
        load_specs(text, "bad.yaml")


def test_latest_feedback_wins(db: Session) -> None:
    sparse, _ = _papers(db)
    (spec,) = load_specs(YAML, "ada.yaml")
    profile = apply_spec(db, spec)
    record_feedback(db, profile, sparse.id, False, "web")
    db.refresh(profile)
    assert [(f.paper_id, f.relevant, f.channel) for f in profile.feedback] == [(sparse.id, False, "web")]
