"""Finding 2: the subscribe form answers byte for byte the same whoever the address belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.config import Settings
from service.subscription import unsubscribe
from service.web.app import create_app
from tests.web.helpers import SECRET, make_subscription, subscribe_form

LONG = "x" * 201
INPUTS = {
    "valid": {},
    "topic of 200 characters": {"keywords": "y" * 200},
    "topic over 200 characters": {"keywords": LONG},
    "one long topic among short ones": {"keywords": f"kv cache, {LONG}"},
    "query only": {"keywords": "", "query": "sparse AND attention"},
    "broken query": {"query": "sparse AND (attention"},
    "no topic": {"keywords": ""},
    "bad time zone": {"timezone": "Mars/Olympus"},
    "weekly without a day": {"cadence": "weekly", "weekday": ""},
    "text too long": {"keywords": "z" * 2001},
}


@pytest.fixture
def client(database_url: str, committed_engine: Engine, tmp_path: Path) -> TestClient:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET,  # type: ignore[arg-type]
        base_url="http://testserver",
        subscribe_limit_per_ip=10_000,
        subscribe_limit_per_address=10_000,
    )
    return TestClient(create_app(settings, committed_engine))


def _addresses(client: TestClient, engine: Engine, row: int) -> dict[str, str]:
    """One address in each state, fresh for this input row."""
    new = f"new{row}@example.org"
    pending = f"pending{row}@example.org"
    client.post("/subscribe", data=subscribe_form(client, email=pending))
    active = make_subscription(engine, f"active{row}@example.org")
    gone = make_subscription(engine, f"gone{row}@example.org")
    with Session(engine) as session:
        unsubscribe(session, gone.id)
        session.commit()
    return {"new": new, "pending": pending, "active": active.address, "unsubscribed": gone.address}


def test_every_address_gets_the_same_answer_for_every_input(
    client: TestClient, committed_engine: Engine
) -> None:
    for row, (label, fields) in enumerate(INPUTS.items()):
        answers = {}
        for state, address in _addresses(client, committed_engine, row).items():
            answer = client.post("/subscribe", data=subscribe_form(client, email=address, **fields))
            answers[state] = (answer.status_code, answer.text.replace(address, "ADDRESS"))
        assert len(set(answers.values())) == 1, (label, {s: a[0] for s, a in answers.items()})
