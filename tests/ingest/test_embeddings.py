"""With the [semantic] extra, ingest embeds the papers it stores, so the first preview only reads vectors."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from service.digest.rank import embedder_for
from service.matching import semantic_available
from service.models import Paper, PaperEmbedding
from tests.cli import run_cli
from tests.ingest.helpers import fixture

pytestmark = [
    pytest.mark.semantic,
    pytest.mark.skipif(
        not semantic_available(), reason="needs the [semantic] extra (pip install -e '.[semantic]')"
    ),
]


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_ingest_embeds_new_papers_and_preview_reads_them(
    cli_env: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_cli("ingest", str(fixture("listing_small.txt")), str(fixture("daily_page_small.txt")))
    assert code == 0, output
    papers = _count(cli_env, Paper)
    assert papers >= 6 and _count(cli_env, PaperEmbedding) == papers  # one vector each
    assert f"embedding new papers for semantic matching: {papers}/{papers}" in output  # a line, not a bar
    assert f"embedded {papers} new papers" in output

    code, output = run_cli("subscribe", "ada@example.org", "-i", "sparse attention")
    assert code == 0, output
    subscription = output.split()[1].rstrip(":")

    from service.config import get_settings

    embedder = embedder_for(get_settings())
    assert embedder is not None
    embedded: list[str] = []
    real_embed = type(embedder).embed

    def recording(self: object, texts: list[str]):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real_embed(self, texts)  # type: ignore[arg-type]

    monkeypatch.setattr(type(embedder), "embed", recording)
    code, output = run_cli("digest", "preview", subscription, "--format", "text")
    assert code == 0, output
    with cli_env.connect() as conn:
        titles = conn.execute(select(Paper.title)).scalars().all()
    assert not [text for text in embedded if any(title in text for title in titles)]  # only the interest
    assert _count(cli_env, PaperEmbedding) == papers


def test_a_second_ingest_of_the_same_papers_embeds_nothing(cli_env: Engine) -> None:
    run_cli("ingest", str(fixture("listing_small.txt")))
    code, output = run_cli("ingest", "--force", str(fixture("listing_small.txt")))
    assert code == 0, output
    assert "embedded" not in output and _count(cli_env, PaperEmbedding) == _count(cli_env, Paper)
