"""DKIM signatures on real messages through a real SMTP server, verified by dkimpy's verifier against a
DNS stub that serves the test public keys; the VERP return path of each digest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from pydantic import SecretStr

from service.channels.base import DeliveryError
from service.channels.email import EmailChannel
from service.config import Settings
from service.mail.bounce_path import read_return_path, return_path
from service.mail.dkim import DkimKey, generate_key, read_private_key, write_private_key
from service.models import Subscription
from tests.digest.test_render import golden_digest
from tests.smtp_server import SmtpServer, smtp_server


def keys(tmp_path: Path) -> tuple[Path, Path]:
    rsa_path, ed_path = tmp_path / "dkim-rsa.pem", tmp_path / "dkim-ed25519.pem"
    write_private_key(generate_key("rsa"), rsa_path)
    write_private_key(generate_key("ed25519"), ed_path)
    return rsa_path, ed_path


def settings(url: str, tmp_path: Path, **kw: object) -> Settings:
    rsa_path, ed_path = keys(tmp_path)
    values: dict[str, object] = {
        "smtp_url": SecretStr(url),
        "smtp_rate_per_s": 0,
        "smtp_from": "paperboy <digest@paperboy.example>",
        "dkim_domain": "paperboy.example",
        "dkim_selector": "pb2026",
        "dkim_private_key_file": rsa_path,
        "dkim_ed25519_selector": "pb2026e",
        "dkim_ed25519_key_file": ed_path,
        "bounce_address": "bounces@mail.paperboy.example",
        "secret_key": SecretStr("mail-tests-secret"),
    }
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def dns_for(s: Settings) -> dict[str, bytes]:
    """What the zone would answer: each selector's TXT record, as `paperboy dkim keygen` prints it."""
    out = {}
    assert s.dkim_private_key_file and s.dkim_ed25519_key_file and s.dkim_domain and s.dkim_ed25519_selector
    for selector, path in (
        (s.dkim_selector, s.dkim_private_key_file),
        (s.dkim_ed25519_selector, s.dkim_ed25519_key_file),
    ):
        key = DkimKey(selector, s.dkim_domain, read_private_key(path, "test"))
        out[key.record_name + "."] = key.txt_value().encode()
    return out


def verify_all(data: bytes, records: dict[str, bytes]) -> list[bool]:
    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.decode())

    checker = dkim.DKIM(data)
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    results = []
    for i in range(count):
        try:
            results.append(bool(checker.verify(idx=i, dnsfunc=txt)))
        except dkim.DKIMException:  # e.g. "body hash mismatch"
            results.append(False)
    return results


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def send_digest(s: Settings) -> None:
    channel = EmailChannel(s)
    try:
        channel.send(Subscription(id=7, channel="email", address="reader@example.org"), golden_digest())
    finally:
        channel.close()


def test_every_digest_carries_rsa_and_ed25519_signatures_that_verify(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    s = settings(smtp.url, tmp_path)
    send_digest(s)
    [received] = smtp.messages
    assert verify_all(received.data, dns_for(s)) == [True, True]
    signatures = received.message.get_all("DKIM-Signature")
    assert [dict(p.strip().split("=", 1) for p in sig.split(";") if "=" in p)["a"] for sig in signatures] == [
        "rsa-sha256",
        "ed25519-sha256",
    ]
    signed = signatures[0].replace(" ", "").replace("\r\n", "").split("h=")[1].split(";")[0].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in signed
    assert {"mime-version", "content-type"} <= set(signed)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: 3 new papers", b"Subject: 4 new papers"),
        (b"List-Unsubscribe: <https://paperboy.example/", b"List-Unsubscribe: <https://evil.example/"),
        (b"Speculative decoding", b"Speculative Decoding"),  # the body
    ],
)
def test_a_changed_header_or_body_fails_verification(
    smtp: SmtpServer, tmp_path: Path, old: bytes, new: bytes
) -> None:
    s = settings(smtp.url, tmp_path)
    send_digest(s)
    data = smtp.messages[0].data
    assert old in data
    assert verify_all(data.replace(old, new, 1), dns_for(s)) == [False, False]


def test_an_added_second_subject_breaks_the_signature(smtp: SmtpServer, tmp_path: Path) -> None:
    s = settings(smtp.url, tmp_path)
    send_digest(s)
    data = smtp.messages[0].data
    assert verify_all(b"Subject: click here\r\n" + data, dns_for(s)) == [False, False]


def test_a_wrong_published_key_fails(smtp: SmtpServer, tmp_path: Path) -> None:
    s = settings(smtp.url, tmp_path)
    send_digest(s)
    other = DkimKey("pb2026", "paperboy.example", generate_key("rsa"))
    records = dns_for(s) | {other.record_name + ".": other.txt_value().encode()}
    assert verify_all(smtp.messages[0].data, records)[0] is False


def test_an_unreadable_key_is_a_transient_error_naming_the_setting(smtp: SmtpServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n")
    s = settings(smtp.url, tmp_path, dkim_private_key_file=bad, dkim_ed25519_key_file=None)
    with pytest.raises(DeliveryError) as caught:
        send_digest(s)
    assert not caught.value.permanent
    assert "DKIM_PRIVATE_KEY_FILE" in str(caught.value) and "c2VjcmV0" not in str(caught.value)
    assert smtp.messages == []  # never sent unsigned


def test_the_envelope_sender_is_a_signed_verp_address_naming_the_delivery(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    s = settings(smtp.url, tmp_path)
    send_digest(s)
    sender = smtp.messages[0].mail_from
    assert sender == return_path(s, 7, "2026-11-23")
    assert sender.startswith("bounces+7.2026-11-23.") and sender.endswith("@mail.paperboy.example")
    ref = read_return_path(sender.upper(), s)  # an MTA may fold the case of the local part
    assert ref is not None and (ref.subscription_id, ref.period) == (7, "2026-11-23")
    tampered = sender.replace("bounces+7.", "bounces+8.")
    assert read_return_path(tampered, s) is None
    other_key = s.model_copy(update={"secret_key": SecretStr("another-secret")})
    assert read_return_path(sender, other_key) is None
    rotated = s.model_copy(update={"secret_key": SecretStr("the-new-key"), "old_secret_keys": [s.secret_key]})
    assert read_return_path(sender, rotated) == ref  # mail sent before a key rotation still bounces home


def test_keygen_writes_a_private_key_and_prints_the_record_that_verifies_its_signatures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer
) -> None:
    from service.config import get_settings
    from tests.cli import run_cli

    monkeypatch.setenv("DKIM_DOMAIN", "paperboy.example")
    get_settings.cache_clear()
    try:
        code, out = run_cli("dkim", "keygen", "--out", str(tmp_path), "--selector", "s2026")
        assert code == 0, out
        path = tmp_path / "s2026.paperboy.example.rsa.pem"
        assert path.stat().st_mode & 0o777 == 0o600
        assert "PRIVATE KEY" not in out and f"DKIM_PRIVATE_KEY_FILE={path}" in out
        record = out.split("publish this DNS record:\n", 1)[1].strip()
        assert record.startswith("s2026._domainkey.paperboy.example. IN TXT ( ")
        txt = "".join(record.split("( ", 1)[1].rstrip(" )").replace('" "', "").strip('"'))
        assert txt.startswith("v=DKIM1; k=rsa; p=")
        code, again = run_cli("dkim", "keygen", "--out", str(tmp_path), "--selector", "s2026")
        assert code == 2 and "never overwritten" in again
    finally:
        get_settings.cache_clear()
    s = settings(smtp.url, tmp_path / "other", dkim_selector="s2026", dkim_private_key_file=path)
    s = s.model_copy(update={"dkim_ed25519_key_file": None})
    send_digest(s)
    assert verify_all(smtp.messages[0].data, {"s2026._domainkey.paperboy.example.": txt.encode()}) == [True]


def test_the_confirmation_email_is_signed_too_and_returns_to_the_plain_bounce_address(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    from service.channels.email import send_email
    from service.digest.render import render_email

    s = settings(smtp.url, tmp_path)
    rendered = render_email(
        "confirm", {"email": "new@example.org", "confirm_url": "https://p.example/confirm/T"}
    )
    send_email("new@example.org", rendered, settings=s)
    [received] = smtp.messages
    assert received.mail_from == "bounces@mail.paperboy.example"
    assert verify_all(received.data, dns_for(s)) == [True, True]
