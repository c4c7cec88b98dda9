"""Provider webhooks over real loopback HTTP (uvicorn on a free port), each signed with test keys the way
that provider signs: SES through SNS (RSA certificate), Postmark (basic auth), SendGrid (ECDSA),
Mailgun (HMAC)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.mail.providers import sns_string_to_sign
from service.models import MailEvent, Subscriber, Subscription
from service.web.app import create_app
from tests.mail.test_intake import sent_delivery

TOPIC = "arn:aws:sns:eu-west-1:123456789012:paperboy-ses"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
POSTMARK = "postmark-hook:s3cret-pw"
MAILGUN_KEY = "key-mailgun-signing-0123456789"


class Keys:
    """The test's stand-ins for each provider's signing keys."""

    def __init__(self, folder: Path) -> None:
        self.sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.sns_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.sns_key, hashes.SHA256())
        )
        self.cert_file = folder / "sns-cert.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.sendgrid_key = ec.generate_private_key(ec.SECP256R1())
        der = self.sendgrid_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.sendgrid_public = base64.b64encode(der).decode()

    def sns(self, message: dict[str, Any], version: str = "2") -> bytes:
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.sns_key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
        return json.dumps({**message, "Signature": base64.b64encode(signature).decode()}).encode()

    def sendgrid(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = self.sendgrid_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }


def mailgun_signature(key: str = MAILGUN_KEY, timestamp: int | None = None) -> dict[str, str]:
    stamp, token = str(timestamp if timestamp is not None else int(time.time())), "a" * 50
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


class LiveApp:
    """The web app under uvicorn on 127.0.0.1 and a port the OS picks."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        config = uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def hook_settings(keys: Keys, tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": tmp_path,
        "secret_key": SecretStr("mail-tests-secret"),
        "ses_sns_cert_file": keys.cert_file,
        "ses_sns_topic_arn": TOPIC,
        "postmark_webhook_credentials": SecretStr(POSTMARK),
        "sendgrid_webhook_public_key": keys.sendgrid_public,
        "mailgun_webhook_signing_key": SecretStr(MAILGUN_KEY),
        "hard_bounce_limit": 1,
    }
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def site(keys: Keys, tmp_path: Path, committed_engine: Engine) -> Iterator[httpx.Client]:
    with (
        LiveApp(hook_settings(keys, tmp_path), committed_engine) as base,
        httpx.Client(base_url=base) as client,
    ):
        yield client


@pytest.fixture
def delivery(committed_engine: Engine) -> tuple[int, str]:
    with Session(committed_engine) as session, session.begin():
        d = sent_delivery(session)
        return d.id, d.message_id or ""


def stored(engine: Engine) -> list[tuple[str, str, str, int | None]]:
    with Session(engine) as session:
        rows = session.scalars(select(MailEvent).order_by(MailEvent.id))
        return [(e.provider, e.kind, e.address, e.delivery_id) for e in rows]


def flagged(engine: Engine, email: str = "ada@example.org") -> bool:
    with Session(engine) as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
        return bool(subscriber and subscriber.flagged)


def ses_notification(kind: str, message_id: str, sns_id: str = "sns-1") -> dict[str, Any]:
    mail = {"messageId": "0100018c-ses", "commonHeaders": {"messageId": message_id}}
    body: dict[str, Any] = {"notificationType": kind, "mail": mail}
    if kind == "Bounce":
        body["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "ada@example.org",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 unknown",
                }
            ],
        }
    else:
        body["complaint"] = {
            "complainedRecipients": [{"emailAddress": "ada@example.org"}],
            "complaintFeedbackType": "abuse",
        }
    return {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(body),
        "Timestamp": "2026-11-26T09:00:00.000Z",
    }


def test_ses_bounce_through_sns_is_verified_matched_and_stored_once(
    site: httpx.Client, keys: Keys, delivery: tuple[int, str], committed_engine: Engine
) -> None:
    delivery_id, message_id = delivery
    body = keys.sns(ses_notification("Bounce", message_id))
    answer = site.post("/webhooks/mail/ses", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "duplicates": 0, "type": "Notification"}
    assert stored(committed_engine) == [("ses", "hard_bounce", "ada@example.org", delivery_id)]
    assert flagged(committed_engine)
    again = site.post("/webhooks/mail/ses", content=body)  # SNS retries: no second effect
    assert again.json()["duplicates"] == 1 and len(stored(committed_engine)) == 1


def test_ses_sha1_signatures_complaints_and_subscription_confirmations(
    site: httpx.Client,
    keys: Keys,
    delivery: tuple[int, str],
    committed_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, message_id = delivery
    answer = site.post("/webhooks/mail/ses", content=keys.sns(ses_notification("Complaint", message_id), "1"))
    assert answer.status_code == 200 and answer.json()["recorded"] == 1
    with Session(committed_engine) as session:
        assert {s.status for s in session.scalars(select(Subscription))} == {"unsubscribed"}
    confirm = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "sns-c",
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
        "Timestamp": "2026-11-26T09:00:00.000Z",
    }
    caplog.set_level("WARNING", logger="paperboy.mail")
    answer = site.post("/webhooks/mail/ses", content=keys.sns(confirm))
    assert answer.status_code == 200 and answer.json()["type"] == "SubscriptionConfirmation"
    assert confirm["SubscribeURL"] in caplog.text  # the operator opens it; paperboy fetches nothing


@pytest.mark.parametrize("tamper", ["message", "topic", "cert url", "unsigned"])
def test_ses_refuses_what_sns_did_not_sign(
    site: httpx.Client, keys: Keys, delivery: tuple[int, str], committed_engine: Engine, tamper: str
) -> None:
    message = json.loads(keys.sns(ses_notification("Bounce", delivery[1])))
    if tamper == "message":
        message["Message"] = message["Message"].replace("ada@example.org", "bob@example.org")
    elif tamper == "topic":  # a genuine signature, but for another topic
        message = json.loads(
            keys.sns({**ses_notification("Bounce", delivery[1]), "TopicArn": TOPIC + "-other"})
        )
    elif tamper == "cert url":
        message["SigningCertURL"] = "https://evil.example/cert.pem"
    else:
        message.pop("Signature")
    answer = site.post("/webhooks/mail/ses", content=json.dumps(message))
    assert answer.status_code == (403 if tamper == "topic" else 401), answer.text
    assert stored(committed_engine) == [] and not flagged(committed_engine)


def test_postmark_with_its_basic_auth(
    site: httpx.Client, delivery: tuple[int, str], committed_engine: Engine
) -> None:
    bounce = {
        "RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "TypeCode": 1, "Email": "ada@example.org",
        "Description": "The server was unable to deliver your message", "Details": "smtp;550 5.1.1",
    }  # fmt: skip
    assert site.post("/webhooks/mail/postmark", json=bounce).status_code == 401
    wrong = site.post("/webhooks/mail/postmark", json=bounce, auth=("postmark-hook", "guess"))
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    user, password = POSTMARK.split(":")
    answer = site.post("/webhooks/mail/postmark", json=bounce, auth=(user, password))
    assert answer.status_code == 200 and answer.json()["recorded"] == 1
    complaint = {"RecordType": "SpamComplaint", "ID": 43, "Email": "ada@example.org"}
    assert site.post("/webhooks/mail/postmark", json=complaint, auth=(user, password)).json()["recorded"] == 1
    opened = {"RecordType": "Open", "Recipient": "ada@example.org"}
    assert site.post("/webhooks/mail/postmark", json=opened, auth=(user, password)).json()["recorded"] == 0
    assert [(p, k) for p, k, _, _ in stored(committed_engine)] == [
        ("postmark", "hard_bounce"),
        ("postmark", "complaint"),
    ]


def test_sendgrid_signed_event_batch(
    site: httpx.Client, keys: Keys, delivery: tuple[int, str], committed_engine: Engine
) -> None:
    delivery_id, message_id = delivery
    events = [
        {"email": "ada@example.org", "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 unknown user", "sg_event_id": "e1", "smtp-id": message_id, "timestamp": 1},
        {"email": "bob@example.org", "event": "deferred", "sg_event_id": "e2", "response": "451 try later"},
        {"email": "carol@example.org", "event": "spamreport", "sg_event_id": "e3"},
        {"email": "dan@example.org", "event": "delivered", "sg_event_id": "e4"},
        {"email": "dan@example.org", "event": "open", "sg_event_id": "e5"},
    ]  # fmt: skip
    body = json.dumps(events).encode()
    answer = site.post("/webhooks/mail/sendgrid", content=body, headers=keys.sendgrid(body))
    assert answer.status_code == 200 and answer.json() == {"recorded": 4, "duplicates": 0}
    assert stored(committed_engine) == [
        ("sendgrid", "hard_bounce", "ada@example.org", delivery_id),
        ("sendgrid", "soft_bounce", "bob@example.org", None),
        ("sendgrid", "complaint", "carol@example.org", None),
        ("sendgrid", "delivered", "dan@example.org", None),
    ]
    changed = body.replace(b"5.1.1", b"5.1.2", 1)
    assert (
        site.post("/webhooks/mail/sendgrid", content=changed, headers=keys.sendgrid(body)).status_code == 401
    )
    stale = keys.sendgrid(body, timestamp=int(time.time()) - 3600)
    answer = site.post("/webhooks/mail/sendgrid", content=body, headers=stale)
    assert answer.status_code == 401 and "old" in answer.json()["detail"]


def test_mailgun_hmac_signature(
    site: httpx.Client, delivery: tuple[int, str], committed_engine: Engine
) -> None:
    delivery_id, message_id = delivery
    event = {
        "event": "failed", "severity": "permanent", "recipient": "ada@example.org", "id": "mg-1",
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": "No such user"},
        "message": {"headers": {"message-id": message_id.strip("<>")}},
    }  # fmt: skip
    forged = {"signature": mailgun_signature(key="not-the-key"), "event-data": event}
    assert site.post("/webhooks/mail/mailgun", json=forged).status_code == 401
    stale = {"signature": mailgun_signature(timestamp=int(time.time()) - 7200), "event-data": event}
    assert site.post("/webhooks/mail/mailgun", json=stale).status_code == 401
    answer = site.post("/webhooks/mail/mailgun", json={"signature": mailgun_signature(), "event-data": event})
    assert answer.status_code == 200 and answer.json()["recorded"] == 1
    assert stored(committed_engine) == [("mailgun", "hard_bounce", "ada@example.org", delivery_id)]
    assert flagged(committed_engine)


def test_a_non_ascii_mailgun_signature_is_refused_not_a_500(
    site: httpx.Client, delivery: tuple[int, str]
) -> None:
    signature = {**mailgun_signature(), "signature": "é" * 64}
    answer = site.post("/webhooks/mail/mailgun", json={"signature": signature, "event-data": {}})
    assert answer.status_code == 401


def test_a_batch_larger_than_the_apps_form_limit_is_accepted_up_to_webhook_max_bytes(
    site: httpx.Client, keys: Keys
) -> None:
    from service.web.gate import FORM_MAX_BYTES

    events = [
        {"email": f"r{n}@example.org", "event": "open", "sg_event_id": f"o{n}", "pad": "x" * 150}
        for n in range(4000)
    ]
    body = json.dumps(events).encode()
    assert FORM_MAX_BYTES < len(body) < 1024 * 1024
    answer = site.post("/webhooks/mail/sendgrid", content=body, headers=keys.sendgrid(body))
    assert answer.status_code == 200 and answer.json() == {"recorded": 0, "duplicates": 0}


def test_bodies_over_the_stated_limit_are_refused_and_unconfigured_providers_are_off(
    keys: Keys, tmp_path: Path, committed_engine: Engine
) -> None:
    settings = hook_settings(keys, tmp_path, webhook_max_bytes=2048, sendgrid_webhook_public_key=None)
    with LiveApp(settings, committed_engine) as base, httpx.Client(base_url=base) as client:
        big = json.dumps([{"event": "delivered", "email": "x" * 4000}]).encode()
        assert client.post("/webhooks/mail/mailgun", content=big).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while the body streams
            yield from (big[i : i + 512] for i in range(0, len(big), 512))

        assert client.post("/webhooks/mail/mailgun", content=chunks()).status_code == 413
        off = client.post("/webhooks/mail/sendgrid", content=b"[]")
        assert off.status_code == 503 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in off.text
