"""Fetching one HTTP feed: conditional GET, timeouts, retries with backoff, a size limit while streaming.

Timeouts, connection errors, a connection dropped mid-body, 408/425/429 and 5xx are transient: retried
with exponential backoff (and at least the server's Retry-After, capped). Any other 4xx, and a body over
the size limit, are permanent for this poll. Waiting goes through the injected `sleep` (the Clock), so
tests see every backoff without waiting for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import BinaryIO

import httpx

log = logging.getLogger("paperboy.sources")

_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 300.0


class FetchError(Exception):
    """A poll that got no usable body; `permanent` ones are not retried within the poll."""

    def __init__(self, message: str, *, permanent: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.attempts = attempts


@dataclass
class Fetched:
    """The outcome of one successful request: a body (in `sink`) or "not modified"."""

    status_code: int
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 1

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


def fetch(
    client: httpx.Client,
    url: str,
    sink: BinaryIO,
    *,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None],
) -> Fetched:
    """GET `url` into `sink` with conditional headers, retrying transient failures with backoff."""
    headers = {"Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    attempt = 0
    while True:
        attempt += 1
        try:
            fetched = _fetch_once(client, url, sink, headers, max_bytes)
            fetched.attempts = attempt
            return fetched
        except _Transient as exc:
            if attempt > retries:
                message = f"{exc} (gave up after {attempt} attempts)"
                raise FetchError(message, permanent=False, attempts=attempt) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER_S))
            log.info("retrying %s in %.1fs after: %s", url, delay, exc)
            sleep(delay)
        except FetchError as exc:
            exc.attempts = attempt
            raise


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BlockedAddress(Exception):
    """A feed's connection reached an address paperboy does not fetch from (raised mid-connect)."""


def forbidden_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local (cloud metadata), and every other non-public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _check_connection(event: str, info: dict[str, object]) -> None:
    # httpcore's trace hook: runs once the TCP connection is up and before a byte of the request is
    # sent, on every hop of a redirect, with the address actually connected to (after DNS).
    if event != "connection.connect_tcp.complete":
        return
    stream = info.get("return_value")
    address = stream.get_extra_info("server_addr") if stream is not None else None  # type: ignore[attr-defined]
    if not address:
        raise BlockedAddress("the address connected to is unknown")
    ip = ipaddress.ip_address(address[0])
    if forbidden_address(ip):
        raise BlockedAddress(
            f"{ip} is not a public address (loopback, private or link-local); "
            "set FEED_ALLOW_PRIVATE_ADDRESSES=true for an on-premise feed"
        )


def _guard_request(request: httpx.Request) -> None:
    request.extensions = {**request.extensions, "trace": _check_connection}


def feed_client(*, timeout_s: float, allow_private: bool) -> httpx.Client:
    """The HTTP client feeds are fetched with: redirects followed, every connection checked."""
    hooks = {} if allow_private else {"request": [_guard_request]}
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=True,
        headers={"User-Agent": "paperboy"},
        event_hooks=hooks,
    )


def _fetch_once(
    client: httpx.Client, url: str, sink: BinaryIO, headers: dict[str, str], max_bytes: int
) -> Fetched:
    sink.seek(0)
    sink.truncate()
    try:
        return _stream_into(client, url, sink, headers, max_bytes)
    except BlockedAddress as exc:
        raise FetchError(f"refused to fetch {url}: {exc}", permanent=True) from exc


def _stream_into(
    client: httpx.Client, url: str, sink: BinaryIO, headers: dict[str, str], max_bytes: int
) -> Fetched:
    try:
        with client.stream("GET", url, headers=headers) as response:
            code = response.status_code
            if code == 304:
                return Fetched(304)
            if code in _RETRY_STATUSES:
                raise _Transient(f"HTTP {code} from {url}", _retry_after(response.headers.get("Retry-After")))
            if code >= 400 or code < 200:
                raise FetchError(f"HTTP {code} from {url}", permanent=True)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdecimal() and int(declared) > max_bytes:
                raise FetchError(_too_big(url, max_bytes, f"{declared} bytes announced"), permanent=True)
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:  # stop reading at once; closing the stream drops the connection
                    raise FetchError(_too_big(url, max_bytes, "body kept going"), permanent=True)
                sink.write(chunk)
            sink.flush()
            return Fetched(code, size, response.headers.get("ETag"), response.headers.get("Last-Modified"))
    except httpx.TimeoutException as exc:
        raise _Transient(f"timed out ({type(exc).__name__}) fetching {url}") from exc
    except httpx.TransportError as exc:  # refused, reset, dropped mid-body, bad chunking
        raise _Transient(f"{type(exc).__name__} fetching {url}: {exc}") from exc


def _too_big(url: str, max_bytes: int, detail: str) -> str:
    return f"{url} is over the size limit of {max_bytes} bytes (INGEST_MAX_BYTES): {detail}"


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    if value.strip().isdecimal():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
