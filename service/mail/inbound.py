"""`paperboy inbound`: an SMTP (or LMTP) listener for what comes back: bounces to the VERP return path,
feedback-loop complaints, and mail to the unsubscribe mailbox.

Each message is first written to INBOUND folder (var/inbound/<date>/) so that nothing received is lost,
then read and recorded; only then is it accepted (250). When recording fails the sender is told to try
again later (451) and the saved copy stays for `paperboy bounces ingest`. Recipients outside the
service's own domains are refused: this is not a relay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from service.config import Settings
from service.db import session_scope
from service.mail.intake import Taken, take_in
from service.oplog import log_event

log = logging.getLogger("paperboy.mail")
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce quotes the original at most; digests are far smaller


def own_domains(settings: Settings) -> set[str]:
    """The domains whose mail this listener takes: bounce path, unsubscribe mailbox, DKIM/From."""
    found = {settings.unsubscribe_mailto.rpartition("@")[2].lower()}
    if settings.bounce_address:
        found.add(settings.bounce_address.rpartition("@")[2].lower())
    if settings.dkim_domain:
        found.add(settings.dkim_domain.lower())
    return {d for d in found if d}


class InboundHandler:
    """aiosmtpd handler: save, read, record; the database work runs in a worker thread."""

    def __init__(self, engine: Engine, settings: Settings, folder: Path) -> None:
        self.engine = engine
        self.settings = settings
        self.folder = folder
        self.domains = own_domains(settings)
        self.taken: list[Taken] = []  # what was recorded, newest last (tests and the CLI read it)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.rpartition("@")[2].lower() not in self.domains:
            return "550 5.7.1 not a mailbox of this service"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        if not isinstance(data, bytes):
            data = str(data).encode("utf-8", "surrogateescape")
        recipients = tuple(envelope.rcpt_tos)
        try:
            taken = await asyncio.get_running_loop().run_in_executor(None, self.take, data, recipients)
        except Exception as exc:  # the saved copy stays; the sending MTA retries
            log_event(log, "inbound_failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return self._per_recipient(
                server, envelope, "451 4.3.0 cannot record this message now; try again later"
            )
        self.taken.append(taken)
        return self._per_recipient(server, envelope, "250 2.0.0 recorded")

    @staticmethod
    def _per_recipient(server: SMTP, envelope: Envelope, reply: str) -> str:
        """LMTP answers DATA once per accepted recipient (RFC 2033); the message was read once, so
        every recipient gets the same answer."""
        if isinstance(server, LMTP):
            return "\r\n".join([reply] * max(len(envelope.rcpt_tos), 1))
        return reply

    def take(self, data: bytes, recipients: tuple[str, ...]) -> Taken:
        now = dt.datetime.now(dt.UTC)
        path = self.save(data, now)
        with session_scope(self.engine) as session:
            taken = take_in(
                session, data, settings=self.settings, ref=str(path), now=now, recipients=recipients
            )
        log_event(
            log,
            "inbound",
            file=str(path),
            events=len(taken.recorded),
            kinds=",".join(r.kind for r in taken.recorded) or "-",
            why=taken.why or None,
        )
        return taken

    def save(self, data: bytes, now: dt.datetime) -> Path:
        folder = self.folder / now.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{now.strftime('%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".receiving-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
        return target


class InboundServer:
    """The listener on its own event loop thread; port 0 takes a free port (see `.port`)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        lmtp: bool = False,
        folder: Path | None = None,
    ) -> None:
        self.handler = InboundHandler(engine, settings, folder or settings.var_dir / "inbound")
        self.host = host or settings.inbound_host
        self.port = settings.inbound_port if port is None else port
        self.protocol: type[SMTP] = LMTP if lmtp else SMTP
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def _factory(self) -> Any:
        return self.protocol(self.handler, data_size_limit=MAX_MESSAGE_BYTES, loop=self._loop)

    def start(self) -> InboundServer:
        self._server = self._loop.run_until_complete(
            self._loop.create_server(self._factory, host=self.host, port=self.port)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=self._loop.run_forever, name="paperboy-inbound", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> InboundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
