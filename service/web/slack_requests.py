"""Is this request really from Slack, for the first time, and from a workspace paperboy serves?

Every Slack request must carry a valid X-Slack-Signature for its body under SLACK_SIGNING_SECRET, with
an X-Slack-Request-Timestamp within five minutes (slack_sdk's SignatureVerifier). Its signature is
then written to `slack_seen_requests` (kept ten minutes), or to Redis when REDIS_URL is set: a second
request with the same signature is refused, whichever process or instance gets it, since they share
the database (or the cache). Last, the team_id
(or enterprise id) it claims must belong to an installation of the app, or to SLACK_BOT_TOKEN's
workspace: a request signed for another workspace of the same app cannot reach this one's data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import http.client
import logging
import random
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from redis import Redis
from redis.exceptions import RedisError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from service.channels.slack import QUIET_SDK_LOG
from service.config import Settings
from service.models import SlackSeenRequest
from service.slack_app.installs import WorkspaceMemory, known_workspace

WINDOW_S = 300  # SignatureVerifier's timestamp window
log = logging.getLogger("paperboy.slack")
KEEP_S = 2 * WINDOW_S  # a signature is remembered while its timestamp could still pass, both ways


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def verified_body(request: Request) -> bytes:
    """The raw body, once its signature, timestamp and novelty are proven; 401 (or 503) otherwise.

    The body's size is capped while it streams by the routers' max_body_size (service/web/gate.py).
    """
    secret = settings_of(request).slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        raise HTTPException(503, "Slack requests are not accepted: SLACK_SIGNING_SECRET is not set")
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    # Refused before the body is read: a request that cannot be Slack's costs no memory.
    if not signature or not _fresh(timestamp, time.time()):
        raise HTTPException(401, "invalid Slack signature or stale timestamp")
    body = await request.body()
    verifier = SignatureVerifier(secret.get_secret_value())
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError):  # a timestamp that is not a number
        valid = False
    if not valid:
        raise HTTPException(401, "invalid Slack signature or stale timestamp")
    engine = request.app.state.engine
    redis_url = settings_of(request).redis_url
    if not await run_in_threadpool(first_time, engine, signature[:100], time.time(), redis_url):
        raise HTTPException(401, "this Slack request was already received")
    return body


def _fresh(timestamp: str | None, now: float) -> bool:
    try:
        return abs(now - int(timestamp or "")) <= WINDOW_S
    except ValueError:
        return False


def first_time(engine: Engine, signature: str, now: float, redis_url: str = "") -> bool:
    """Record the signature; False when some process recorded it already (a replay).

    With REDIS_URL (the cache the workers share) it is one SET NX EX there; otherwise, or when Redis
    cannot be reached, one INSERT ... ON CONFLICT DO NOTHING RETURNING in the database: a row back
    means this request is new, with no error and no second round trip on the acknowledgement's path.
    """
    if redis_url:
        try:
            return bool(_redis(redis_url).set(f"paperboy:slack-seen:{signature}", 1, nx=True, ex=KEEP_S))
        except RedisError as exc:
            log.warning("slack: replay guard falls back to the database: Redis %s", type(exc).__name__)
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    table = SlackSeenRequest.__table__
    values = {"signature": signature, "expires_at": at + dt.timedelta(seconds=KEEP_S)}
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(engine.dialect.name)
    with engine.begin() as conn:
        if insert is None:  # another backend: the primary key refuses the second one
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(**values))
            except IntegrityError:
                return False
        else:
            statement = insert(table).values(**values).on_conflict_do_nothing().returning(table.c.signature)
            if conn.execute(statement).first() is None:  # (psycopg reports no row count here)
                return False
        if random.random() < 1 / 64:  # now and then, forget what has left the window
            conn.execute(delete(table).where(table.c.expires_at < at))
    return True


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


async def check_workspace(request: Request, team_id: str | None, enterprise_id: str | None = None) -> None:
    """403 unless the request's workspace has installed the app (or is SLACK_BOT_TOKEN's)."""
    settings = settings_of(request)
    team_id, enterprise_id = team_id or None, enterprise_id or None
    memory = workspace_memory(request)
    if memory.knows(team_id, enterprise_id):  # no database round trip on the ack's path
        return
    sessions = request.app.state.sessions

    def known() -> bool:
        with sessions() as session:
            return known_workspace(session, settings, team_id, enterprise_id)

    if not await run_in_threadpool(known):
        raise HTTPException(403, "this Slack workspace has not installed paperboy")
    memory.remember(team_id, enterprise_id)


def workspace_memory(request: Request) -> WorkspaceMemory:
    state = request.app.state
    if not hasattr(state, "slack_workspaces"):
        state.slack_workspaces = WorkspaceMemory()
    return state.slack_workspaces  # type: ignore[no-any-return]


# Calls to Slack made after an acknowledgement (views.open, views.publish, chat.unfurl...) run on
# threads of their own, so that a burst of them never holds up the acknowledgements of the requests
# still arriving (which use Starlette's thread pool for their database work).
SLACK_CALLS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="paperboy-slack")


def after_ack(work: Callable[..., object], *args: object) -> BackgroundTask:
    """Run `work(*args)` once the answer is sent, on the Slack-call threads."""

    async def run() -> None:
        await asyncio.get_running_loop().run_in_executor(SLACK_CALLS, functools.partial(work, *args))

    return BackgroundTask(run)


def send_to_response_url(response_url: str, message: dict[str, Any], settings: Settings) -> None:
    """Post to a response_url from a signed payload, if it is Slack's; a failure is logged, not raised."""
    if not trusted_response_url(response_url, settings):
        log.warning("slack: response_url refused (not https://hooks.slack.com)")
        return
    hook = WebhookClient(url=response_url, timeout=10, logger=QUIET_SDK_LOG, retry_handlers=[])
    # A missing reply is not worth an error: what the click asked for is already stored.
    try:
        hook.send_dict(message)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        log.warning("slack: response_url post failed: %s", type(exc).__name__)


def trusted_response_url(url: str, settings: Settings) -> bool:
    """Only https to Slack's hooks host (or the configured API host: the loopback Slack in tests).

    The URL is read by urllib.request's own parser, the one WebhookClient sends with, and then by
    http.client's host:port split, so what is checked is exactly where the request would go; a URL
    with user info (`https://a:1@hooks.slack.com`) is refused outright.
    """
    try:
        target = urllib.request.Request(url)
        if "@" in target.host or target.type not in ("https", "http"):
            return False
        kind = http.client.HTTPSConnection if target.type == "https" else http.client.HTTPConnection
        connection = kind(target.host)  # splits host and port as the send would; connects nowhere
    except (ValueError, http.client.HTTPException):
        return False
    where = (target.type, connection.host, connection.port)
    if where == ("https", "hooks.slack.com", 443):
        return True
    api = urlsplit(settings.slack_api_url)
    return where == (api.scheme, api.hostname, api.port or (443 if api.scheme == "https" else 80))
