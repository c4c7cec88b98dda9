"""The email channel: a digest as a multipart/alternative message, sent over SMTP or to the outbox.

One EmailChannel holds one transport, so a batch of digests reuses one SMTP connection; sends are
spaced to at most `smtp_rate_per_s` messages a second. Every header value is a single line built by
the email package (RFC 2047 for non-ASCII names and subjects), so paper text cannot add headers.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.policy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit

from service.channels.base import DeliveryError
from service.channels.shared_limits import SharedRelayLimit
from service.channels.smtp import OutboxTransport, SmtpTransport, Transport, parse_smtp_url
from service.config import Settings, SetupError
from service.digest.render import RenderedEmail, one_line, render_digest_email
from service.mail.bounce_path import return_path
from service.mail.dkim import DkimConfigError, DkimSigner, signer_for

if TYPE_CHECKING:
    from service.digest.model import Digest
    from service.models import Subscription


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, but it builds each header class once: the stock one creates a
    new class with type() for every header set, a third of the time spent building a message."""

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._built:
            self._built[key] = super().__getitem__(name)
        return self._built[key]


# CRLF line ends, as SMTP wants. Headers fold at 998, not 78: a List-Unsubscribe URL with its signed
# token is one long "word", which the 78 limit would turn into RFC 2047 encoded-words that no mail
# client reads as a URL.
POLICY = SMTP.clone(header_factory=_HeaderClasses(), max_line_length=998)


def transport_for(settings: Settings) -> Transport:
    """SMTP when SMTP_URL is set, else the outbox folder (works on a fresh machine)."""
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value().strip():
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
        return SmtpTransport(target, timeout=settings.smtp_timeout_s, ca_file=settings.smtp_ca_file)
    return OutboxTransport(settings.resolved_outbox_dir)


def check_email_settings(settings: Settings) -> None:
    """Refuse SMTP_URL / SMTP_FROM now if every send would fail on them (before anything is claimed)."""
    transport_for(settings).close()  # parses SMTP_URL; connects only on the first send
    sender_address(settings)


def sender_address(settings: Settings) -> Address:
    """SMTP_FROM parsed ("paperboy <digest@example.org>"); a clear error when it is not an address."""
    return _parsed_sender(settings.smtp_from)


@lru_cache(maxsize=8)
def _parsed_sender(smtp_from: str) -> Address:
    # Three times a digest (From, Message-ID, List-Id): the parse was a tenth of building a message.
    pairs = getaddresses([smtp_from])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise SetupError(f"SMTP_FROM {smtp_from!r} is not one email address")
    name, addr = pairs[0]
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=one_line(name), username=username, domain=domain)


def digest_message_id(digest: Digest, settings: Settings) -> str:
    """Deterministic per delivery, so a retried digest carries the same Message-ID."""
    period = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in digest.period)
    return f"<digest.{digest.subscription_id}.{period}@{sender_address(settings).domain}>"


def unsubscribe_mailto(unsubscribe_url: str, settings: Settings) -> str:
    """mailto: form of List-Unsubscribe carrying the same signed token in its subject."""
    token = urlsplit(unsubscribe_url).path.rstrip("/").rsplit("/", 1)[-1]
    return f"mailto:{settings.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: envelope and bytes (CRLF line ends)."""

    sender: str
    recipient: str
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message as the standard library reads it back (previews, tests)."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def build_message(
    rendered: RenderedEmail,
    *,
    to: str,
    settings: Settings,
    message_id: str,
    date: dt.datetime,
    headers: Mapping[str, str] | None = None,
) -> Outgoing:
    """A multipart/alternative message (text first, HTML preferred) with single-line headers.

    The two parts are quoted-printable encoded by binascii's C code and joined here (the stock
    generator took three quarters of a digest's time); "=_" in the boundary cannot occur in QP text.
    """
    recipient = to.strip()
    if not recipient or any(ch in recipient for ch in "\r\n<>,;") or recipient.count("@") != 1:
        raise DeliveryError(f"{to!r} is not a deliverable email address", permanent=True)
    sender = sender_address(settings)
    boundary = f"=_paperboy_{uuid.uuid4().hex}"
    fields = [
        ("From", str(sender)),
        ("To", recipient),
        ("Subject", one_line(rendered.subject)),
        ("Date", format_datetime(date.astimezone(dt.UTC))),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no vacation auto-replies
        *((one_line(name), one_line(value)) for name, value in (headers or {}).items()),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    try:
        out = [header_line(name, value) for name, value in fields]
    except (ValueError, TypeError) as exc:
        raise DeliveryError(f"cannot build a message for {to!r}: {exc}", permanent=True) from exc
    delimiter = b"--" + boundary.encode("ascii")
    out.append(b"\r\n")
    for subtype, body in ((b"plain", rendered.text), (b"html", rendered.html)):
        out += [
            delimiter,
            b"\r\nContent-Type: text/",
            subtype,
            _PART_HEADERS,
            _quoted_printable(body),
            b"\r\n",
        ]
    out += [delimiter, b"--\r\n"]
    return Outgoing(sender.addr_spec, recipient, message_id, b"".join(out))


def header_line(name: str, value: str) -> bytes:
    """One header, CRLF-terminated. Printable ASCII goes out as it is (nothing in it can start a new
    header); anything else goes through the email package, which refuses CR/LF, RFC 2047-encodes
    non-ASCII text and folds."""
    if value.isascii() and value.isprintable() and len(name) + len(value) < 990:
        return f"{name}: {value}\r\n".encode("ascii")
    return _folded(name, value)


@lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> bytes:
    # A non-ASCII From name is the same on every message, and subjects repeat across a pool's
    # subscribers ("·" in every subject sends it here); the email package's folding is slow.
    stored_name, header = POLICY.header_store_parse(name, value)
    return POLICY.fold_binary(stored_name, header)


_PART_HEADERS = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'


def _quoted_printable(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


class RateLimiter:
    """At most `rate` calls a second, evenly spaced (0 or less: no limit). Thread-safe."""

    def __init__(
        self,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._sleep = sleep
        self._monotonic = monotonic
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class EmailChannel:
    """Sends digests (and one-off messages) by email; close() ends the batch's SMTP connection."""

    name = "email"

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        now: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.transport = transport or transport_for(settings)
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._limiter: RateLimiter | SharedRelayLimit = (
            SharedRelayLimit(settings, sleep=sleep)  # the relay's rate, across every worker
            if settings.redis_url and settings.smtp_rate_per_s > 0
            else RateLimiter(settings.smtp_rate_per_s, sleep=sleep)
        )
        self._lock = threading.Lock()  # one SMTP conversation at a time on the shared connection
        self._signer: DkimSigner | Literal[False] | None = None  # None: not loaded yet; False: no DKIM

    def digest_message(self, subscription: Subscription, digest: Digest) -> Outgoing:
        """The message `send` would deliver for this digest (previews and tests use it too)."""
        rendered = render_digest_email(digest, recipient=subscription.address)
        headers = {
            "List-Unsubscribe": (
                f"<{digest.links.unsubscribe_post}>, "
                f"<{unsubscribe_mailto(digest.links.unsubscribe_post, self.settings)}>"
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
            "List-Id": f"paperboy digest <digest.{sender_address(self.settings).domain}>",
        }
        message = build_message(
            rendered,
            to=subscription.address,
            settings=self.settings,
            message_id=digest_message_id(digest, self.settings),
            date=self._now(),
            headers=headers,
        )
        verp = return_path(self.settings, digest.subscription_id, digest.period)
        return replace(message, sender=verp) if verp else message

    def send(self, subscription: Subscription, digest: Digest) -> str:
        return self.send_message(self.digest_message(subscription, digest))

    def signed(self, message: Outgoing) -> bytes:
        """The message's bytes with its DKIM signature(s) prepended, when DKIM is configured."""
        if self._signer is None:
            try:
                self._signer = signer_for(self.settings) or False
            except DkimConfigError as exc:  # the operator's to fix: retried, never sent unsigned
                raise DeliveryError(f"cannot sign: {exc}", permanent=False) from exc
        return self._signer.sign(message.data) if self._signer else message.data

    def send_message(self, message: Outgoing) -> str:
        """Sign and send a built message; returns its Message-ID. Raises DeliveryError."""
        data = self.signed(message)  # last step before the wire: every header is final
        self._limiter.wait()
        with self._lock:
            self.transport.send(message.sender, message.recipient, data, message.message_id)
        return message.message_id

    def close(self) -> None:
        with self._lock:
            self.transport.close()


def send_email(
    to: str,
    rendered: RenderedEmail,
    *,
    settings: Settings,
    transport: Transport | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Send one transactional message (the double opt-in confirmation); returns its Message-ID."""
    channel = EmailChannel(settings, transport=transport)
    try:
        message = build_message(
            rendered,
            to=to,
            settings=settings,
            message_id=make_msgid(domain=sender_address(settings).domain),
            date=dt.datetime.now(dt.UTC),
            headers=headers,
        )
        if settings.bounce_address:  # no VERP tag: a bounce is matched by its Message-ID
            message = replace(message, sender=settings.bounce_address)
        return channel.send_message(message)
    finally:
        if transport is None:  # a caller's transport stays open for the caller to reuse
            channel.close()
