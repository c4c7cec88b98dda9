"""What a message that came back says, as reports (pure: bytes in, reports out, no I/O).

- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status): one report
  per recipient block. Action failed + 5.x.x is a hard bounce, 4.x.x or Action delayed a soft one,
  delivered/relayed a delivery.
- RFC 5965 ARF feedback-loop reports (report-type=feedback-report): a complaint.
- Mail to the unsubscribe mailbox: an unsubscribe request carrying a signed token in the subject
  ("unsubscribe <token>", what our mailto: List-Unsubscribe writes) or in the address (unsubscribe+<token>@).
- Anything else that looks like a bounce goes through flufl.bounce's detectors (Mailman's; they know the
  non-standard shapes of qmail, Exim, Postfix, Yahoo, Microsoft, AOL, ...).

Each report carries the addresses it was sent to and the Return-Path it quotes (a VERP address names
the delivery) and the original Message-ID, so that service.mail.intake can find the delivery.
"""

from __future__ import annotations

import email
import email.message
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from flufl.bounce import all_failures

from service.config import Settings
from service.mail.bounce_path import is_bounce_address

# flufl.bounce logs every detector it tries at INFO: 17 lines per bounce in an INFO-level service log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{20,}")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed|notification)|returned mail|failure notice|"
    r"mail delivery (failed|subsystem)|could not be delivered|bounce",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)", re.IGNORECASE)
_ADDRESS_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


@dataclass(frozen=True)
class Report:
    """One thing a returned message says about one recipient."""

    kind: str  # hard_bounce | soft_bounce | complaint | delivered | unsubscribe
    provider: str  # dsn | arf | bounce (non-standard, flufl.bounce) | mailbox
    address: str  # the recipient it is about, lower case; "" when the report hides it
    report_id: str  # the returned message's own Message-ID (or a hash of its bytes)
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    detail: str = ""
    return_paths: tuple[str, ...] = ()  # where it was sent / the Return-Path it quotes (VERP)
    original_message_id: str | None = None
    token: str | None = None  # unsubscribe requests
    sender: str = ""  # who sent it (logged when an unsubscribe request is refused)


@dataclass(frozen=True)
class Reading:
    """The reports of one message; `why` says why there are none."""

    reports: list[Report] = field(default_factory=list)
    why: str = ""


def read_mail(data: bytes, settings: Settings, *, recipients: Sequence[str] = ()) -> Reading:
    """The reports in one returned message (`recipients`: its SMTP envelope recipients, if known)."""
    msg = email.message_from_bytes(data)
    report_id = _clean_id(msg.get("Message-ID")) or "sha256:" + hashlib.sha256(data).hexdigest()[:40]
    as_written = [*recipients, *_addresses(msg, _ADDRESS_HEADERS)]  # a token in an address keeps its case
    sent_to = tuple(dict.fromkeys(a.lower() for a in as_written if a))
    sender = _first_address(msg.get_all("From", []))
    base = {"report_id": report_id, "sender": sender}
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type", "") or "").lower()
        if report_type == "feedback-report":
            return _feedback_report(msg, sent_to, base)
        if report_type == "delivery-status":
            reading = _delivery_status(msg, sent_to, base)
            if reading.reports:
                return reading
    mailbox = _unsubscribe_target(sent_to, settings)
    if mailbox is not None:
        written = next(a for a in as_written if a.lower() == mailbox)
        return _unsubscribe_request(msg, written, base)
    if not _looks_like_bounce(msg, sent_to, settings):
        return Reading(why="not a bounce, complaint or unsubscribe request")
    return _nonstandard_bounce(msg, sent_to, base)


# --- RFC 3464 ---------------------------------------------------------------------------------


def _delivery_status(msg: email.message.Message, sent_to: tuple[str, ...], base: dict[str, str]) -> Reading:
    blocks: list[email.message.Message] = []
    original: email.message.Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks.extend(payload)
            elif isinstance(payload, str):  # a parser that left it as text
                blocks.extend(
                    email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", payload) if b.strip()
                )
        elif (
            ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None
        ):
            original = _enclosed(part)
    message_id, return_paths = _original_refs(original, msg)
    reports = []
    for block in blocks:
        recipient = _dsn_address(block.get("Original-Recipient")) or _dsn_address(
            block.get("Final-Recipient")
        )
        if not recipient:
            continue  # the per-message block
        action = str(block.get("Action", "")).strip().lower()
        found = _STATUS.search(str(block.get("Status", "")))
        status = found.group(0) if found else None
        kind = _dsn_kind(action, status)
        if kind is None:
            continue
        if status is None:
            status = {"hard_bounce": "5.0.0", "soft_bounce": "4.0.0"}.get(kind)
        detail = " ".join(str(block.get("Diagnostic-Code", "") or action).split())[:500]
        reports.append(
            Report(
                kind,
                "dsn",
                recipient,
                status=status,
                detail=detail,
                return_paths=sent_to + return_paths,
                original_message_id=message_id,
                **base,
            )
        )
    return Reading(reports, "" if reports else "a delivery status report without recipient blocks")


def _dsn_kind(action: str, status: str | None) -> str | None:
    if action in ("delivered", "relayed", "expanded"):
        return "delivered"
    if action == "delayed" or (status or "").startswith("4"):
        return "soft_bounce"
    if action == "failed" or (status or "").startswith("5"):
        return "hard_bounce"
    return None


def _dsn_address(value: object) -> str:
    """ "rfc822; Ada <ada@example.org>" -> "ada@example.org"."""
    if not value:
        return ""
    text = str(value)
    kind, sep, rest = text.partition(";")
    if sep and kind.strip().lower() not in ("rfc822", "utf-8"):
        return ""
    return _first_address([unquote(rest if sep else text)])


# --- RFC 5965 ---------------------------------------------------------------------------------


def _feedback_report(msg: email.message.Message, sent_to: tuple[str, ...], base: dict[str, str]) -> Reading:
    fields: email.message.Message | None = None
    original: email.message.Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                fields = payload[0]
            elif isinstance(payload, str):
                fields = email.message_from_string(payload)
        elif (
            ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None
        ):
            original = _enclosed(part)
    if fields is None:
        return Reading(why="a feedback report without its message/feedback-report part")
    feedback_type = str(fields.get("Feedback-Type", "abuse")).strip().lower()
    if feedback_type not in ("abuse", "fraud", "virus", "other"):
        return Reading(why=f"feedback type {feedback_type!r} is not a complaint")
    # Many feedback loops redact the recipient; the VERP Return-Path or Message-ID still names the delivery.
    address = _first_address(fields.get_all("Original-Rcpt-To", [])) or (
        _first_address(original.get_all("To", [])) if original is not None else ""
    )
    if "redacted" in address or address.count("@") != 1:
        address = ""
    message_id, return_paths = _original_refs(original, msg)
    mail_from = _first_address(fields.get_all("Original-Mail-From", []))
    report = Report(
        "complaint",
        "arf",
        address,
        detail=f"feedback type {feedback_type}"
        + (f" from {_clean(fields.get('Reported-Domain'))}" if fields.get("Reported-Domain") else ""),
        return_paths=sent_to + return_paths + ((mail_from,) if mail_from else ()),
        original_message_id=message_id,
        **base,
    )
    return Reading([report])


# --- the unsubscribe mailbox ------------------------------------------------------------------


def _unsubscribe_target(sent_to: Iterable[str], settings: Settings) -> str | None:
    """The unsubscribe mailbox address the message was sent to, if any."""
    local, _, domain = settings.unsubscribe_mailto.lower().rpartition("@")
    for address in sent_to:
        a_local, _, a_domain = address.rpartition("@")
        if a_domain == domain and (a_local == local or a_local.startswith(local + "+")):
            return address
    return None


def _unsubscribe_request(msg: email.message.Message, mailbox: str, base: dict[str, str]) -> Reading:
    subject = _clean(msg.get("Subject"))
    local = mailbox.partition("@")[0]
    words = subject.split()
    token = None
    if len(words) >= 2 and words[0].lower().rstrip(":") == "unsubscribe":
        token = words[1]
    elif "+" in local:
        token = local.split("+", 1)[1]
    elif (found := _TOKEN.search(subject)) is not None:
        token = found.group(0)
    if token is None:
        return Reading(why=f"mail to {mailbox} without an unsubscribe token in its subject or address")
    return Reading(
        [Report("unsubscribe", "mailbox", base["sender"], detail=f"mail to {mailbox}", token=token, **base)]
    )


# --- everything else: flufl.bounce -------------------------------------------------------------


def _looks_like_bounce(msg: email.message.Message, sent_to: tuple[str, ...], settings: Settings) -> bool:
    if any(is_bounce_address(a, settings) for a in sent_to):
        return True
    if msg.get("X-Failed-Recipients") or str(msg.get("Return-Path", "")).strip() == "<>":
        return True
    return bool(_DAEMON.search(str(msg.get("From", "")))) or bool(
        _BOUNCE_SUBJECT.search(str(msg.get("Subject", "")))
    )


def _nonstandard_bounce(
    msg: email.message.Message, sent_to: tuple[str, ...], base: dict[str, str]
) -> Reading:
    temporary, permanent = all_failures(msg)
    text = _text_of(msg)
    found = _MESSAGE_ID.search(text)
    message_id = found.group(1) if found else None
    status_match = _STATUS.search(text)
    reports = []
    for kind, addresses, default in (
        ("hard_bounce", permanent, "5.0.0"),
        ("soft_bounce", temporary, "4.0.0"),
    ):
        for raw in sorted(addresses):
            address = raw.decode("ascii", "replace").strip("<>").lower()
            status = (
                status_match.group(0) if status_match and status_match.group(1) == default[0] else default
            )
            reports.append(
                Report(
                    kind,
                    "bounce",
                    address,
                    status=status,
                    detail=_clean(msg.get("Subject"))[:200],
                    return_paths=sent_to,
                    original_message_id=message_id,
                    **base,
                )
            )
    return Reading(reports, "" if reports else "looks like a bounce, but no failed recipient was found")


# --- helpers ----------------------------------------------------------------------------------


def _enclosed(part: email.message.Message) -> email.message.Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        first = payload[0]
        return first if isinstance(first, email.message.Message) else None
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return email.message_from_bytes(raw)
    return None


def _original_refs(
    original: email.message.Message | None, report: email.message.Message
) -> tuple[str | None, tuple[str, ...]]:
    """The original message's Message-ID and Return-Path (our VERP address)."""
    if original is None:
        found = _MESSAGE_ID.search(_text_of(report))
        return (found.group(1) if found else None), ()
    paths = tuple(a.lower() for a in _addresses(original, ("Return-Path",)))
    return _clean_id(original.get("Message-ID")), paths


def _text_of(msg: email.message.Message) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                chunks.append(raw.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)


# email.utils.getaddresses took a quarter of the time of reading a report; the headers that name
# addresses here hold plain ones, so two regular expressions do: <angled> ones, then bare ones outside
# quoted display names.
_ANGLED = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_BARE = re.compile(r"[^\s<>\"',;:()\[\]@]+@[^\s<>\"',;:()\[\]@]+")


def _addresses_in(value: str) -> list[str]:
    angled = _ANGLED.findall(value)
    rest = _ANGLED.sub(" ", _QUOTED.sub(" ", value)) if angled or '"' in value else value
    return [a.strip(".") for a in angled + _BARE.findall(rest)]


def _addresses(msg: email.message.Message, headers: Iterable[str]) -> list[str]:
    found: list[str] = []
    for name in headers:
        for value in msg.get_all(name, []):
            found.extend(_addresses_in(str(value)))
    return found


def _first_address(values: Sequence[object]) -> str:
    for value in values:
        found = _addresses_in(str(value))
        if found:
            return found[0].lower()
    return ""


def _clean(value: object) -> str:
    return " ".join(str(value or "").split())


def _clean_id(value: object) -> str | None:
    text = _clean(value)
    return text[:300] or None
