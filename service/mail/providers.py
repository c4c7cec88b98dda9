"""Event webhooks of email providers, each verified the way that provider documents, mapped to the same
reports as returned mail (service.mail.reports) so one code path stores and acts on them.

- Amazon SES through SNS: the SNS message signature (SignatureVersion 1: SHA1, 2: SHA256, RSA PKCS#1
  v1.5) over the documented canonical string, checked against the certificate in SES_SNS_CERT_FILE (the
  one SigningCertURL names; nothing is fetched at run time); SES_SNS_TOPIC_ARN limits the topic.
- Postmark: HTTP basic auth credentials set on the webhook URL (POSTMARK_WEBHOOK_CREDENTIALS).
- SendGrid: the signed event webhook, ECDSA P-256/SHA-256 over timestamp + body, with the verification
  key SendGrid shows (SENDGRID_WEBHOOK_PUBLIC_KEY) and a fresh timestamp.
- Mailgun: HMAC-SHA256 of timestamp + token under MAILGUN_WEBHOOK_SIGNING_KEY, with a fresh timestamp.
Secrets and signatures are never echoed in errors or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from service.config import Settings
from service.mail.reports import Report


class WebhookRejected(Exception):
    """A request that is not a genuine provider event: `status_code` says how it is answered."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"the body is not JSON: {exc}") from exc


def _fresh(timestamp: str | None, settings: Settings, now: float) -> None:
    try:
        age = abs(now - float(timestamp or ""))
    except ValueError as exc:
        raise WebhookRejected(401, "missing or malformed signature timestamp") from exc
    if age > settings.webhook_max_age_s:
        raise WebhookRejected(
            401, f"signature timestamp is {int(age)} s old (limit {settings.webhook_max_age_s} s)"
        )


def _bracketed(message_id: object) -> str | None:
    text = str(message_id or "").strip()
    if not text:
        return None
    return text if text.startswith("<") else f"<{text}>"


def _status(value: object, kind: str) -> str | None:
    """A bounce's enhanced status code as given, else its class alone (5.0.0 / 4.0.0); None otherwise."""
    default = {"hard_bounce": "5.0.0", "soft_bounce": "4.0.0"}.get(kind)
    text = str(value or "").strip()
    if default is None:
        return None
    return text if text[:1] == default[0] and text.count(".") == 2 else default


# --- Amazon SES through SNS --------------------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical "Name\\nvalue\\n" string SNS signs (absent optional fields are left out)."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise WebhookRejected(400, f"unknown SNS message type {message.get('Type')!r}")
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode("utf-8")


def verify_sns(message: dict[str, Any], settings: Settings, *, now: float | None = None) -> None:
    """Raise WebhookRejected unless the SNS signature verifies under the configured certificate."""
    if settings.ses_sns_cert_file is None:
        raise WebhookRejected(503, "SES notifications are not accepted: SES_SNS_CERT_FILE is not set")
    cert_url = urlsplit(str(message.get("SigningCertURL", "")))
    if cert_url.scheme != "https" or not (cert_url.hostname or "").endswith(".amazonaws.com"):
        raise WebhookRejected(401, "SigningCertURL is not an https amazonaws.com address")
    try:
        cert = x509.load_pem_x509_certificate(settings.ses_sns_cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise WebhookRejected(
            503, f"SES_SNS_CERT_FILE {settings.ses_sns_cert_file} is not a PEM certificate"
        ) from exc
    moment = now if now is not None else time.time()
    if not cert.not_valid_before_utc.timestamp() <= moment <= cert.not_valid_after_utc.timestamp():
        raise WebhookRejected(503, "the SNS signing certificate in SES_SNS_CERT_FILE is not valid now")
    version = str(message.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)  # type: ignore[assignment]
    if algorithm is None:
        raise WebhookRejected(401, f"unsupported SNS SignatureVersion {version!r}")
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise WebhookRejected(503, "the SNS signing certificate does not hold an RSA key")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        public.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, binascii.Error, ValueError, KeyError) as exc:
        raise WebhookRejected(401, "invalid SNS signature") from exc
    if settings.ses_sns_topic_arn and message.get("TopicArn") != settings.ses_sns_topic_arn:
        raise WebhookRejected(403, "notification from another SNS topic")


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: its type, the reports of a notification, and for a subscription
    confirmation the SubscribeURL that the operator opens (nothing is fetched here)."""

    type: str
    topic: str
    reports: list[Report]
    subscribe_url: str | None = None


def ses_reports(body: bytes, settings: Settings) -> SnsMessage:
    """The SES events of one SNS message, once its signature is verified."""
    envelope = _json(body)
    if not isinstance(envelope, dict):
        raise WebhookRejected(400, "an SNS message is a JSON object")
    verify_sns(envelope, settings)
    topic = str(envelope.get("TopicArn", ""))
    if envelope["Type"] != "Notification":
        return SnsMessage(str(envelope["Type"]), topic, [], str(envelope.get("SubscribeURL") or "") or None)
    notification = _json(str(envelope.get("Message", "")).encode("utf-8"))
    if not isinstance(notification, dict):
        raise WebhookRejected(400, "the SES notification is not a JSON object")
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    message_id = _bracketed((mail.get("commonHeaders") or {}).get("messageId"))
    base = {"provider": "ses", "original_message_id": message_id}
    ref = str(envelope.get("MessageId", ""))
    reports: list[Report] = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        kind_of = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        for r in bounce.get("bouncedRecipients") or []:
            reports.append(
                Report(
                    "hard_bounce" if hard else "soft_bounce",
                    address=str(r.get("emailAddress", "")).lower(),
                    report_id=f"{ref}:{r.get('emailAddress')}",
                    status=_status(r.get("status"), "hard_bounce" if hard else "soft_bounce"),
                    detail=" ".join(f"{kind_of}: {r.get('diagnosticCode', '')}".split())[:500],
                    **base,  # type: ignore[arg-type]
                )
            )
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        for r in complaint.get("complainedRecipients") or []:
            reports.append(
                Report(
                    "complaint",
                    address=str(r.get("emailAddress", "")).lower(),
                    report_id=f"{ref}:{r.get('emailAddress')}",
                    detail=f"feedback type {complaint.get('complaintFeedbackType') or 'unknown'}",
                    **base,  # type: ignore[arg-type]
                )
            )
    elif kind == "Delivery":
        for address in (notification.get("delivery") or {}).get("recipients") or []:
            reports.append(
                Report("delivered", address=str(address).lower(), report_id=f"{ref}:{address}", **base)  # type: ignore[arg-type]
            )
    return SnsMessage("Notification", topic, reports)


# --- Postmark ----------------------------------------------------------------------------------

_ENHANCED = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked", "SMTPApiError"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "MailFrontier", "ChallengeVerification"}


def verify_postmark(authorization: str | None, settings: Settings) -> None:
    secret = settings.postmark_webhook_credentials
    if secret is None or ":" not in secret.get_secret_value():
        raise WebhookRejected(
            503, "Postmark webhooks are not accepted: POSTMARK_WEBHOOK_CREDENTIALS is not set"
        )
    expected = "Basic " + base64.b64encode(secret.get_secret_value().encode("utf-8")).decode("ascii")
    if not hmac.compare_digest((authorization or "").encode("utf-8"), expected.encode("utf-8")):
        raise WebhookRejected(401, "missing or wrong basic auth credentials")


def postmark_reports(body: bytes, authorization: str | None, settings: Settings) -> list[Report]:
    verify_postmark(authorization, settings)
    event = _json(body)
    events = event if isinstance(event, list) else [event]
    reports = []
    for e in events:
        if not isinstance(e, dict):
            raise WebhookRejected(400, "a Postmark event is a JSON object")
        record, ident = e.get("RecordType"), f"{e.get('RecordType')}:{e.get('ID') or e.get('MessageID')}"
        if record == "Bounce" and (e.get("Type") in _POSTMARK_HARD or e.get("Type") in _POSTMARK_SOFT):
            hard = e.get("Type") in _POSTMARK_HARD
            kind, address = ("hard_bounce" if hard else "soft_bounce"), e.get("Email")
            detail = f"{e.get('Type')}: {e.get('Description') or ''} {e.get('Details') or ''}"
            found = _ENHANCED.search(str(e.get("Details") or ""))
            status = _status(found.group(0) if found else None, kind)
        elif record == "SpamComplaint":
            kind, address, detail, status = "complaint", e.get("Email"), "spam complaint", None
        elif record == "Delivery":
            kind, address, detail, status = "delivered", e.get("Recipient"), str(e.get("Details") or ""), None
        else:
            continue  # opens, clicks, auto-responders: not what paperboy acts on
        reports.append(
            Report(
                kind,
                "postmark",
                str(address or "").lower(),
                report_id=ident,
                status=status,
                detail=" ".join(detail.split())[:500],
                original_message_id=_header(e.get("Headers"), "Message-ID"),
            )
        )
    return reports


def _header(headers: object, name: str) -> str | None:
    for h in headers if isinstance(headers, list) else []:
        if isinstance(h, dict) and str(h.get("Name", "")).lower() == name.lower():
            return _bracketed(h.get("Value"))
    return None


# --- SendGrid ----------------------------------------------------------------------------------


_SENDGRID_KINDS = {"deferred": "soft_bounce", "spamreport": "complaint", "delivered": "delivered"}


def verify_sendgrid(
    body: bytes, signature: str | None, timestamp: str | None, settings: Settings, *, now: float | None = None
) -> None:
    if not settings.sendgrid_webhook_public_key:
        raise WebhookRejected(503, "SendGrid events are not accepted: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    _fresh(timestamp, settings, time.time() if now is None else now)
    try:
        key = serialization.load_der_public_key(base64.b64decode(settings.sendgrid_webhook_public_key))
    except (ValueError, binascii.Error) as exc:
        raise WebhookRejected(503, "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookRejected(503, "SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    try:
        key.verify(
            base64.b64decode(signature or "", validate=True),
            (timestamp or "").encode("utf-8") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise WebhookRejected(401, "invalid SendGrid event webhook signature") from exc


def sendgrid_reports(
    body: bytes, signature: str | None, timestamp: str | None, settings: Settings
) -> list[Report]:
    verify_sendgrid(body, signature, timestamp, settings)
    events = _json(body)
    if not isinstance(events, list):
        raise WebhookRejected(400, "SendGrid posts a JSON array of events")
    reports = []
    for e in events:
        if not isinstance(e, dict):
            raise WebhookRejected(400, "a SendGrid event is a JSON object")
        name = e.get("event")
        if name == "bounce":
            # type "blocked" is a refusal of this message (reputation, content), not of the address
            kind = "soft_bounce" if e.get("type") == "blocked" else "hard_bounce"
        elif name in _SENDGRID_KINDS:
            kind = _SENDGRID_KINDS[name]
        else:
            continue  # opens, clicks, processed, dropped, unsubscribes of SendGrid's own lists
        reports.append(
            Report(
                kind,
                "sendgrid",
                str(e.get("email", "")).lower(),
                report_id=str(
                    e.get("sg_event_id") or f"{e.get('sg_message_id')}:{name}:{e.get('timestamp')}"
                ),
                status=_status(e.get("status"), kind),
                detail=" ".join(str(e.get("reason") or e.get("response") or name).split())[:500],
                original_message_id=_bracketed(e.get("smtp-id")),
            )
        )
    return reports


# --- Mailgun -----------------------------------------------------------------------------------


def verify_mailgun(signature: dict[str, Any], settings: Settings, *, now: float | None = None) -> None:
    key = settings.mailgun_webhook_signing_key
    if key is None or not key.get_secret_value():
        raise WebhookRejected(
            503, "Mailgun webhooks are not accepted: MAILGUN_WEBHOOK_SIGNING_KEY is not set"
        )
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    _fresh(timestamp, settings, time.time() if now is None else now)
    expected = hmac.new(
        key.get_secret_value().encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
    )
    # Bytes: compare_digest raises on a str holding non-ASCII characters (a 500, not a refusal).
    given = str(signature.get("signature", "")).encode("utf-8")
    if not hmac.compare_digest(expected.hexdigest().encode("ascii"), given):
        raise WebhookRejected(401, "invalid Mailgun webhook signature")


def mailgun_reports(body: bytes, settings: Settings) -> list[Report]:
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("signature"), dict):
        raise WebhookRejected(400, "a Mailgun webhook is a JSON object with 'signature' and 'event-data'")
    verify_mailgun(payload["signature"], settings)
    e = payload.get("event-data") or {}
    name = e.get("event")
    if name == "failed":
        kind = "hard_bounce" if e.get("severity") == "permanent" else "soft_bounce"
    elif name in ("complained", "delivered"):
        kind = {"complained": "complaint", "delivered": "delivered"}[name]
    else:
        return []
    status_info = e.get("delivery-status") or {}
    code = str(status_info.get("code") or "")
    status = _status(status_info.get("enhanced-code"), kind)
    headers = (e.get("message") or {}).get("headers") or {}
    detail = " ".join(
        f"{code} {status_info.get('message') or status_info.get('description') or name}".split()
    )
    return [
        Report(
            kind,
            "mailgun",
            str(e.get("recipient", "")).lower(),
            report_id=str(e.get("id") or payload["signature"].get("token")),
            status=status,
            detail=detail[:500],
            original_message_id=_bracketed(headers.get("message-id")),
        )
    ]
