"""Bulk subscriptions: `paperboy subscriptions import/export` and the admin endpoints (SQLite and
PostgreSQL): per-row errors with line numbers, dry run, idempotent re-import, consent, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from service.config import get_settings
from service.db import session_scope
from service.models import Subscriber, Subscription
from tests.cli import run_cli
from tests.web.helpers import ADMIN_TOKEN

CSV = (
    "email,interests,query,cadence,weekday,time,timezone,max_papers\n"
    "ada@example.org,sparse attention;kv cache,,daily,,08:00,Europe/Paris,10\n"
    'Bob@Example.org,diffusion,"""kv cache"" AND quant*",weekly,fri,07:30,UTC,5\n'
    "not-an-address,x,,daily,,08:00,UTC,10\n"
    "carol@example.org,graphs,,daily,,08:00,Mars/Olympus,10\n"
    "dan@example.org,graphs,,weekly,,08:00,UTC,10\n"
    "erin@example.org,graphs,,daily,,25:00,UTC,10\n"
    "frank@example.org,graphs,,daily,,08:00,UTC,0\n"
    "ada@example.org,retrieval,,daily,,08:00,UTC,10\n"
    "gina@example.org,,,daily,,08:00,UTC,10\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Subscriber)) or 0,
            session.scalar(select(func.count()).select_from(Subscription)) or 0,
        )


def test_import_reports_each_bad_row_and_imports_the_others_once(cli_env: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "subs.csv", CSV)
    code, out = run_cli("subscriptions", "import", str(path), "--dry-run")
    assert code == 1 and "would import 9 rows: 2 created" in out
    assert _counts(cli_env) == (0, 0)  # a dry run stores nothing

    code, out = run_cli("subscriptions", "import", str(path), "--no-send-confirmations")
    assert code == 1
    assert "imported 9 rows: 2 created, 0 updated, 0 unchanged, 7 with errors" in out
    for expected in (
        "line 4: email: 'not-an-address' is not a valid address",
        "line 5: timezone: unknown IANA time zone 'Mars/Olympus'",
        "line 6: weekday: a weekly digest needs a day",
        "line 7: time: '25:00' is not HH:MM",
        "line 8: max_papers: 0 is not between 1 and 100",
        "line 9: email: ada@example.org is already on line 2",
        "line 10: interests: give at least one interest or a query",
    ):
        assert expected in out, expected
    assert _counts(cli_env) == (2, 2)
    with session_scope(cli_env) as session:
        bob = session.scalars(select(Subscription).where(Subscription.address == "bob@example.org")).one()
        assert (bob.cadence, bob.weekday, bob.send_time.isoformat(), bob.max_papers) == (
            "weekly",
            4,
            "07:30:00",
            5,
        )
        assert bob.interests == ["diffusion"] and bob.status == "pending"
        assert [(i.name, i.query) for i in bob.profile.interests] == [("diffusion", '"kv cache" AND quant*')]

    code, out = run_cli("subscriptions", "import", str(path))  # idempotent
    assert "imported 9 rows: 0 created, 0 updated, 2 unchanged, 7 with errors" in out
    assert _counts(cli_env) == (2, 2)


def test_reimport_updates_changed_rows_and_never_resubscribes(cli_env: Engine, tmp_path: Path) -> None:
    first = "email,interests,cadence\nada@example.org,kv cache,daily\nbob@example.org,graphs,daily\n"
    run_cli(
        "subscriptions",
        "import",
        str(_write(tmp_path, "a.csv", first)),
        "--as-confirmed",
        "--consent-source",
        "x",
    )
    code, out = run_cli("unsubscribe", "--email", "bob@example.org")
    assert code == 0, out
    second = (
        "email,interests,cadence\n"
        "ada@example.org,kv cache;long context,weekdays\n"
        "bob@example.org,graphs,daily\n"
    )
    code, out = run_cli("subscriptions", "import", str(_write(tmp_path, "b.csv", second)))
    assert "0 created, 1 updated, 0 unchanged, 1 with errors" in out
    assert "line 3: email: bob@example.org unsubscribed; an import never resubscribes" in out
    with session_scope(cli_env) as session:
        ada = session.scalars(select(Subscription).where(Subscription.address == "ada@example.org")).one()
        assert ada.cadence == "weekdays" and ada.interests == ["kv cache", "long context"]
        assert {i.name for i in ada.profile.interests} == {"kv cache", "long context"}


def test_import_as_confirmed_records_the_consent_source(cli_env: Engine, tmp_path: Path) -> None:
    path = _write(
        tmp_path, "subs.jsonl", json.dumps({"email": "ada@example.org", "interests": ["kv cache"]}) + "\n"
    )
    code, out = run_cli("subscriptions", "import", str(path), "--as-confirmed")
    assert code == 2 and "needs a consent source" in out
    code, out = run_cli(
        "subscriptions", "import", str(path), "--as-confirmed", "--consent-source", "NeurIPS booth"
    )
    assert code == 0, out
    with session_scope(cli_env) as session:
        ada = session.scalars(select(Subscriber)).one()
        assert ada.verified and ada.consent_source == "NeurIPS booth" and ada.consent_at is not None
        assert session.scalars(select(Subscription)).one().status == "active"


def test_pending_imports_get_a_confirmation_email(cli_env: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "subs.csv", "email,interests\nada@example.org,kv cache\n")
    code, out = run_cli("subscriptions", "import", str(path))
    assert code == 0 and "1 confirmation emails sent" in out
    outbox = list(get_settings().resolved_outbox_dir.glob("*.eml"))
    assert len(outbox) == 1 and "/confirm/" in outbox[0].read_text()
    run_cli("subscriptions", "import", str(path))  # re-import: no second email
    assert len(list(get_settings().resolved_outbox_dir.glob("*.eml"))) == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_the_import_format_back(cli_env: Engine, tmp_path: Path, fmt: str) -> None:
    source = _write(tmp_path, "subs.csv", CSV)
    run_cli("subscriptions", "import", str(source), "--as-confirmed", "--consent-source", "test")
    target = tmp_path / f"out.{fmt}"
    code, out = run_cli("subscriptions", "export", "-o", str(target))
    assert code == 0 and "2 subscriptions exported" in out
    text = target.read_text()
    if fmt == "csv":
        assert text.splitlines()[0] == "email,interests,query,cadence,weekday,time,timezone,max_papers"
        assert "ada@example.org,sparse attention;kv cache,,daily,,08:00,Europe/Paris,10" in text
    else:
        bob = json.loads(text.splitlines()[1])
        assert bob["query"] == '"kv cache" AND quant*' and bob["weekday"] == "fri"
    code, out = run_cli("subscriptions", "import", str(target))
    assert code == 0 and "0 created, 0 updated, 2 unchanged, 0 with errors" in out


def test_an_unusable_file_exits_2_and_names_the_problem(cli_env: Engine, tmp_path: Path) -> None:
    code, out = run_cli("subscriptions", "import", str(_write(tmp_path, "a.csv", "mail,interest\nx,y\n")))
    assert code == 2 and "no 'email' column" in out
    code, out = run_cli("subscriptions", "import", str(_write(tmp_path, "a.txt.gz", "x")))
    assert code == 2 and "give --format" in out
    bad = _write(
        tmp_path, "b.jsonl", '{"email": "a@example.org", "interests": ["x"], "colour": 1}\n[1]\n{oops\n'
    )
    code, out = run_cli("subscriptions", "import", str(bad))
    assert code == 1 and "line 1: row: unknown fields ['colour']" in out
    assert "line 2: row: a row must be a JSON object" in out and "line 3: row: not JSON" in out


def test_the_admin_api_imports_and_exports(client: TestClient, cli_env: Engine) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"format": "csv", "content": CSV, "dry_run": True}
    dry = client.post("/api/admin/subscriptions/import", json=body, headers=auth)
    assert dry.status_code == 200 and dry.json()["created"] == 2 and dry.json()["errors"] == 7
    assert {"line": 4, "field": "email"}.items() <= dry.json()["error_rows"][0].items()
    assert _counts(cli_env) == (0, 0)
    body |= {"dry_run": False, "confirmed": True, "consent_source": "partner list"}
    done = client.post("/api/admin/subscriptions/import", json=body, headers=auth).json()
    assert done["created"] == 2 and done["confirmations_queued"] == 0
    again = client.post("/api/admin/subscriptions/import", json=body, headers=auth).json()
    assert again["unchanged"] == 2 and again["created"] == 0
    exported = client.get("/api/admin/subscriptions/export", params={"format": "jsonl"}, headers=auth)
    assert exported.status_code == 200 and exported.json()["count"] == 2
    lines = exported.json()["content"].splitlines()
    assert [json.loads(line)["email"] for line in lines] == ["ada@example.org", "bob@example.org"]
    bad = client.post(
        "/api/admin/subscriptions/import", json={"format": "csv", "content": "x\n1\n"}, headers=auth
    )
    assert bad.status_code == 400 and "email" in bad.json()["detail"]
    unconsented = {"format": "csv", "content": CSV, "confirmed": True}
    assert client.post("/api/admin/subscriptions/import", json=unconsented, headers=auth).status_code == 400


def test_the_fast_email_check_never_accepts_what_email_validator_refuses() -> None:
    from service.bulk import plain_email
    from service.subscription import SubscriptionError, normalise_email

    samples = [
        "ada@example.org", "Ada.Lovelace+digest@Mail.Example.co.uk", "a..b@example.org", ".a@example.org",
        "a.@example.org", "a@example", "a@localhost", "a@foo.test", "a@x.onion", "a@-x.org", "a@x-.org",
        "a@xn--bcher-kva.example", "a@ex--ample.org", "a@1.2.3.4", "a@example.o", "a b@example.org",
        "\"q\"@example.org", "é@example.org", "a@exämple.org", "x" * 65 + "@example.org",
        "a@" + "b" * 64 + ".org", "a@example.org.", "a_b-c@sub-domain.example.io",
    ]  # fmt: skip
    for sample in samples:
        fast = plain_email(sample)
        try:
            full: str | None = normalise_email(sample)
        except SubscriptionError:
            full = None
        assert fast is None or fast == full, (sample, fast, full)
    assert plain_email("Ada@Example.org") == "ada@example.org"
