"""A real SMTP server on loopback (aiosmtpd) for tests and benchmarks, scriptable per stage.

`SmtpServer()` starts an aiosmtpd Controller on 127.0.0.1 and a free port. Its handler accepts every
message unless told otherwise: `handler.script("rcpt", "550 5.1.1 no such user")` answers the next
RCPT with that reply, `"DROP"` closes the connection instead of answering, and
`handler.reject("bounce@example.org", "550 ...")` rejects one address every time. Received messages
are parsed back with the standard library (`email.policy.default`).
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

DROP = "DROP"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class ScriptedHandler:
    """Accepts mail; scripted replies per stage ("mail", "rcpt", "data") and per recipient."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.sessions: set[int] = set()  # distinct connections that sent MAIL
        self.replies: dict[str, deque[str]] = {"mail": deque(), "rcpt": deque(), "data": deque()}
        self.rejected: dict[str, str] = {}
        self._lock = threading.Lock()

    def script(self, stage: str, *replies: str) -> None:
        with self._lock:
            self.replies[stage].extend(replies)

    def reject(self, address: str, reply: str) -> None:
        self.rejected[address.lower()] = reply

    def _next(self, stage: str) -> str | None:
        with self._lock:
            return self.replies[stage].popleft() if self.replies[stage] else None

    @staticmethod
    def _drop(server: Any) -> str:
        server.transport.close()
        return "421 4.4.2 connection dropped"  # never reaches the client

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.sessions.add(id(session))
        reply = self._next("mail")
        if reply == DROP:
            return self._drop(server)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self._next("rcpt") or self.rejected.get(address.lower())
        if reply == DROP:
            return self._drop(server)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._next("data")
        if reply == DROP:
            return self._drop(server)
        if reply:
            return reply
        with self._lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content), session.peer)
            )
        return "250 2.0.0 OK: queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """aiosmtpd on loopback. `tls`: a server SSLContext for STARTTLS (or implicit TLS with
    `implicit_tls=True`); `credentials`: (user, password) required through AUTH."""

    def __init__(
        self,
        handler: ScriptedHandler | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.handler = handler or ScriptedHandler()
        self.port = free_port()
        self.implicit_tls = implicit_tls
        kwargs: dict[str, Any] = {}
        if tls is not None and not implicit_tls:
            kwargs["tls_context"] = tls
            kwargs["require_starttls"] = True
        if credentials is not None:
            kwargs["authenticator"] = _authenticator(*credentials)
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = tls is not None
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=tls if implicit_tls else None,
            server_hostname="127.0.0.1",
            **kwargs,
        )

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _authenticator(user: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def self_signed_tls(folder: Any) -> tuple[ssl.SSLContext, Any]:
    """A server SSLContext with a fresh self-signed certificate for 127.0.0.1, and the cert's path
    (clients trust it through SMTP_CA_FILE)."""
    import datetime as dt
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(folder)
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
