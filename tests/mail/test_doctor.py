"""`paperboy doctor` against a real TLS SMTP server, a real inbound listener and a stubbed DNS answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings, get_settings
from service.db import make_engine
from service.mail.dkim import DkimKey, generate_key, read_private_key, write_private_key
from service.mail.inbound import InboundServer
from tests.cli import run_cli
from tests.smtp_server import SmtpServer, free_port, self_signed_tls


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The DNS zone the doctor sees: name -> TXT value."""
    zone: dict[str, str] = {}
    monkeypatch.setattr("service.mail.doctor.txt_record", lambda name: zone.get(name))
    return zone


@pytest.fixture
def production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: dict[str, str]
) -> Iterator[dict[str, str]]:
    """Settings of a sender that passes: STARTTLS relay, DKIM published, listener up, VERP bounces."""
    context, cert = self_signed_tls(tmp_path)
    key_file = tmp_path / "dkim.pem"
    write_private_key(generate_key("rsa"), key_file)
    key = DkimKey("pb1", "paperboy.example", read_private_key(key_file, "test"))
    published[key.record_name] = key.txt_value()
    published["_dmarc.paperboy.example"] = "v=DMARC1; p=quarantine; rua=mailto:dmarc@paperboy.example"
    with (
        SmtpServer(tls=context) as smtp,
        # the doctor only knocks on the listener's door: its database is never reached
        InboundServer(make_engine("sqlite://"), Settings(_env_file=None), port=0, folder=tmp_path) as inbound,  # type: ignore[call-arg]
    ):
        env = {
            "SMTP_URL": smtp.url,
            "SMTP_CA_FILE": str(cert),
            "SMTP_FROM": "paperboy <digest@paperboy.example>",
            "DKIM_DOMAIN": "paperboy.example",
            "DKIM_SELECTOR": "pb1",
            "DKIM_PRIVATE_KEY_FILE": str(key_file),
            "BASE_URL": "https://paperboy.example",
            "SECRET_KEY": "a-long-random-production-secret",
            "UNSUBSCRIBE_MAILTO": "unsubscribe@paperboy.example",
            "INBOUND_PORT": str(inbound.port),
            "BOUNCE_ADDRESS": "bounces@mail.paperboy.example",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield env
    get_settings.cache_clear()


def doctor(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, dict[str, str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    code, out = run_cli("doctor")
    lines = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "warn", "fail") and ":" in rest:
            name, _, message = rest.strip().partition(": ")
            lines[name] = f"{status}: {message}"
    return code, lines


def test_a_production_ready_sender_passes(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, lines = doctor(monkeypatch)
    assert code == 0, lines
    assert set(lines) == {
        "smtp", "alignment", "dkim pb1", "dmarc", "base_url", "secret_key", "unsubscribe mailbox",
        "bounce path",
    }  # fmt: skip
    assert all(v.startswith("ok") for v in lines.values()), lines
    assert "TLS (TLSv1." in lines["smtp"]


def test_each_missing_piece_fails_with_its_own_line(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, published: dict[str, str], tmp_path: Path
) -> None:
    published["pb1._domainkey.paperboy.example"] = (
        "v=DKIM1; k=rsa; p=" + DkimKey("pb1", "paperboy.example", generate_key("rsa")).public_value()
    )
    monkeypatch.delenv("BOUNCE_ADDRESS")
    monkeypatch.delenv("SECRET_KEY")  # the key generated in VAR_DIR would differ per machine
    code, lines = doctor(
        monkeypatch,
        SMTP_FROM="paperboy <digest@other.example>",
        BASE_URL="http://paperboy.example",
        VAR_DIR=str(tmp_path),
        INBOUND_PORT=str(free_port()),
    )
    assert code == 1
    assert lines["alignment"].startswith("fail: From domain other.example is not DKIM_DOMAIN")
    assert lines["dkim pb1"].startswith("fail: pb1._domainkey.paperboy.example publishes another key")
    assert lines["base_url"].startswith("fail") and lines["secret_key"].startswith("fail")
    assert lines["unsubscribe mailbox"].startswith("fail: nothing reads unsubscribe@paperboy.example")
    assert lines["bounce path"].startswith("fail: neither BOUNCE_ADDRESS nor a provider webhook")
    assert lines["smtp"].startswith("ok")


def test_smtp_without_tls_or_unreachable_fails(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer() as plain:
        code, lines = doctor(monkeypatch, SMTP_URL=plain.url)
    assert code == 1 and lines["smtp"] == f"fail: 127.0.0.1:{plain.port} is reachable but offers no STARTTLS"
    code, lines = doctor(monkeypatch, SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    assert code == 1 and "unreachable" in lines["smtp"]


def test_no_dns_answer_is_a_warning_not_a_failure(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, published: dict[str, str]
) -> None:
    published.clear()
    code, lines = doctor(monkeypatch)
    assert code == 0 and lines["dkim pb1"].startswith("warn: key readable; no DNS answer")
    assert lines["dmarc"].startswith("warn: no DNS answer for _dmarc.paperboy.example")
    published["_dmarc.paperboy.example"] = "v=spf1 -all"  # a record, but not DMARC
    code, lines = doctor(monkeypatch)
    assert code == 1 and lines["dmarc"] == "fail: _dmarc.paperboy.example holds no v=DMARC1 record"


def test_a_missing_key_file_fails_without_showing_key_material(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, lines = doctor(monkeypatch, DKIM_PRIVATE_KEY_FILE=str(tmp_path / "nope.pem"))
    assert code == 1 and lines["dkim"].startswith("fail: DKIM_PRIVATE_KEY_FILE: cannot read")
    key_text = Path(production["DKIM_PRIVATE_KEY_FILE"]).read_text()
    code, out = run_cli("doctor")
    assert key_text.splitlines()[1] not in out
