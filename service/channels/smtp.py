"""How email leaves paperboy: an SMTP relay (one reused connection), or .eml files in an outbox.

SMTP_URL `smtp://user:pass@host:587` speaks STARTTLS (required before sending credentials to any host
but loopback), `smtps://host:465` implicit TLS. Failures become DeliveryError: 4xx answers and
connection failures are transient, 5xx rejections of the recipient or the message are permanent
(hard bounces). A 5xx to the sender or the login is the operator's configuration, not the
recipient's fault, so it is transient: the delivery retries and finally fails without a bounce.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import smtplib
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol
from urllib.parse import unquote, urlsplit

from service.channels.base import DeliveryError
from service.config import SetupError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class SmtpConfigError(SetupError):
    """An SMTP_URL paperboy cannot use (the message never includes the password)."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str  # smtp (STARTTLS) | smtps (implicit TLS)
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_smtp_url(url: str) -> SmtpTarget:
    """smtp://[user[:pass]@]host[:port] or smtps://...; user and password may be %-encoded."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpConfigError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or '?'}://")
    if not parts.hostname:
        raise SmtpConfigError("SMTP_URL has no host (expected smtp://user:pass@host:587)")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError as exc:
        raise SmtpConfigError("SMTP_URL has an invalid port") from exc
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Transport(Protocol):
    def send(self, sender: str, recipient: str, payload: bytes, message_id: str) -> None: ...

    def close(self) -> None: ...


class SmtpTransport:
    """One SMTP connection, opened on first use and reused until close()."""

    def __init__(self, target: SmtpTarget, *, timeout: float = 30.0, ca_file: Path | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.ca_file = ca_file
        self._conn: smtplib.SMTP | None = None
        self.connections_opened = 0  # how many times a connection was made (batch reuse shows here)

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        try:
            conn: smtplib.SMTP
            if t.scheme == "smtps":
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self._tls_context())
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
                conn.ehlo()
                if conn.has_extn("starttls"):
                    conn.starttls(context=self._tls_context())
                    conn.ehlo()
                elif t.username and not t.loopback:
                    conn.close()
                    raise DeliveryError(
                        f"SMTP server {t.host}:{t.port} does not offer STARTTLS; "
                        "refusing to send credentials in clear (use smtps:// or a TLS-capable relay)",
                        permanent=False,
                    )
            conn.ehlo_or_helo_if_needed()
            if t.username:
                conn.login(t.username, t.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login to {t.host} refused ({exc.smtp_code})", permanent=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            message = f"cannot connect to SMTP server {t.host}:{t.port}: {_brief(exc)}"
            raise DeliveryError(message, permanent=False) from exc
        self.connections_opened += 1
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.close()

    def _envelope(self, conn: smtplib.SMTP, sender: str, recipient: str) -> None:
        code, resp = conn.mail(sender)
        if code != 250:
            self._rejected(code, resp, "sender", permanent_5xx=False)
        code, resp = conn.rcpt(recipient)
        if code not in (250, 251):
            self._rejected(code, resp, f"recipient {recipient}", permanent_5xx=True)

    def _rejected(self, code: int, resp: bytes | str, what: str, *, permanent_5xx: bool) -> NoReturn:
        if code == 421:  # the server is closing this connection
            self._drop()
        elif self._conn is not None:
            try:  # leave the reused session clean for the next message
                self._conn.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
        text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
        permanent = permanent_5xx and 500 <= code < 600
        raise DeliveryError(f"SMTP server refused {what}: {code} {one_line(text)}", permanent=permanent)

    def send(self, sender: str, recipient: str, payload: bytes, message_id: str) -> None:
        reused = self._conn is not None
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._envelope(self._conn, sender, recipient)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Nothing was sent yet. A reused connection may simply have been closed by the server
            # while idle: reconnect once. A fresh one failing is a real (transient) failure.
            self._drop()
            if not reused:
                raise DeliveryError(f"SMTP connection lost: {_brief(exc)}", permanent=False) from exc
            self._conn = self._connect()
            try:
                self._envelope(self._conn, sender, recipient)
            except (smtplib.SMTPServerDisconnected, OSError) as again:
                self._drop()
                raise DeliveryError(f"SMTP connection lost: {_brief(again)}", permanent=False) from again
        try:
            code, resp = _data(self._conn, payload)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
            self._rejected(exc.smtp_code, exc.smtp_error, "the message", permanent_5xx=True)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The server may or may not have the message; it is reported transient, as the issue
            # asks, and the delivery record says when it is retried.
            self._drop()
            raise DeliveryError(f"SMTP connection lost during DATA: {_brief(exc)}", permanent=False) from exc
        if code != 250:
            self._rejected(code, resp, "the message", permanent_5xx=True)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


class OutboxTransport:
    """Writes each message as `<message-id>.eml` in a folder: the fresh-machine default.

    The name comes from the Message-ID, so a retried delivery overwrites its own file instead of
    leaving two copies; files appear atomically (written aside, then renamed).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, message_id: str) -> Path:
        name = _SAFE_NAME.sub("_", message_id.strip("<>")).strip("._") or "message"
        return self.folder / f"{name[:180]}.eml"

    def send(self, sender: str, recipient: str, payload: bytes, message_id: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.path_for(message_id)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".writing-", suffix=".eml")
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, target)
        except OSError as exc:
            raise DeliveryError(f"cannot write to outbox {self.folder}: {exc}", permanent=False) from exc

    def close(self) -> None:
        pass


def _data(conn: smtplib.SMTP, payload: bytes) -> tuple[int, bytes]:
    """smtplib's SMTP.data for bytes, its dot-stuffing done by bytes.replace: smtplib runs a
    multiline regex over the whole message, half the SMTP client's CPU for a 46 kB digest.
    A line-start dot is one at the start or after any LF, which is what the replace finds."""
    conn.putcmd("data")
    code, reply = conn.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    stuffed = payload.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    conn.send(stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n"))
    return conn.getreply()


def one_line(text: str) -> str:
    return " ".join(text.split())


def _brief(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return one_line(f"{type(exc).__name__}: {exc}")[:300]
