"""Slack's requests to paperboy: the `/paperboy` slash command and the digest buttons.

Every request must carry a valid X-Slack-Signature for its body under SLACK_SIGNING_SECRET, with an
X-Slack-Request-Timestamp within five minutes (slack_sdk's SignatureVerifier); a request seen before
(same timestamp and signature) is refused too, so a captured request cannot be played again while
its timestamp is fresh. Anything else is answered 401 before the body is even parsed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack import QUIET_SDK_LOG
from service.channels.slack_blocks import NOT_RELEVANT, RELEVANT, escape
from service.config import Settings
from service.subscription import SubscriptionError, describe_schedule
from service.tokens import TokenError
from service.web.gate import SLACK_MAX_BYTES

router = APIRouter(prefix="/slack", include_in_schema=False, max_body_size=SLACK_MAX_BYTES)

WINDOW_S = 300  # SignatureVerifier's timestamp window
USAGE = (
    "*/paperboy* manages this channel's paper digests:\n"
    "• `/paperboy subscribe sparse attention, kv cache`: a daily digest (08:00 UTC) on these words\n"
    "• `/paperboy list`: this channel's subscriptions\n"
    "• `/paperboy pause [id]` and `/paperboy resume [id]`: stop and restart digests\n"
    "• `/paperboy unsubscribe <id>`: end one subscription"
)


class ReplayGuard:
    """Remembers the signatures seen within the timestamp window (per process)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 10_000:  # forget what has left the window
                self._seen = {s: t for s, t in self._seen.items() if t > now}
            if self._seen.get(signature, 0.0) > now:
                return False
            self._seen[signature] = now + 2 * WINDOW_S
            return True


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _guard(request: Request) -> ReplayGuard:
    state = request.app.state
    if not hasattr(state, "slack_replay_guard"):
        state.slack_replay_guard = ReplayGuard()
    return state.slack_replay_guard  # type: ignore[no-any-return]


async def verified_form(request: Request) -> dict[str, str]:
    """The request's form fields, once its signature and timestamp are proven; 401 otherwise."""
    secret = _settings(request).slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        raise HTTPException(503, "Slack requests are not accepted: SLACK_SIGNING_SECRET is not set")
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    # Refused before the body is read: a request that cannot be Slack's costs no memory. The body
    # itself is capped while it streams (service/web/gate.py).
    if not signature or not _fresh(timestamp, time.time()):
        raise HTTPException(401, "invalid Slack signature or stale timestamp")
    body = await request.body()
    verifier = SignatureVerifier(secret.get_secret_value())
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError):  # a timestamp that is not a number
        valid = False
    if not valid or signature is None:
        raise HTTPException(401, "invalid Slack signature or stale timestamp")
    if not _guard(request).first_time(signature, time.time()):
        raise HTTPException(401, "this Slack request was already received")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "the body is not UTF-8 form data") from exc


def _fresh(timestamp: str | None, now: float) -> bool:
    try:
        return abs(now - int(timestamp or "")) <= WINDOW_S
    except ValueError:
        return False


def _reply(text: str, *, public: bool = False) -> JSONResponse:
    return JSONResponse({"response_type": "in_channel" if public else "ephemeral", "text": text})


@router.post("/commands")
async def slash_command(request: Request) -> JSONResponse:
    """`/paperboy subscribe <words> | list | pause [id] | resume [id] | unsubscribe <id>`."""
    form = await verified_form(request)
    channel_id = form.get("channel_id", "")
    verb, _, rest = " ".join(form.get("text", "").split()).partition(" ")
    sessions = request.app.state.sessions
    settings = _settings(request)

    def run() -> str:
        with sessions() as session, session.begin():
            return run_command(session, settings, channel_id, verb.lower(), rest)

    return _reply(await run_in_threadpool(run))


def run_command(session: Session, settings: Settings, channel_id: str, verb: str, rest: str) -> str:
    """The reply to one slash command (mrkdwn); input errors become replies, never 500s."""
    try:
        channel_id = channel_subs.check_channel_id(channel_id)
        if verb == "subscribe":
            request = channel_subs.SlackSubscribe(channel_id=channel_id, interest=rest)
            sub, created = channel_subs.subscribe(session, request, settings)
            what = f"*{escape(rest)}*"
            if not created:
                return f"This channel is already subscribed to {what} (#{sub.id})."
            return f"Subscribed this channel to {what} (#{sub.id}): {describe_schedule(sub)}."
        if verb == "list":
            subs = channel_subs.channel_subscriptions(session, channel_id)
            if not subs:
                return "This channel has no subscriptions. Try `/paperboy subscribe sparse attention`."
            return "This channel's subscriptions:\n" + "\n".join(_describe(s) for s in subs)
        if verb in ("pause", "resume"):
            target = _id(rest) if rest else None
            changed = channel_subs.set_paused(session, channel_id, verb == "pause", target)
            if not changed:
                return "This channel has no subscriptions."
            ids = ", ".join(f"#{s.id}" for s in changed)
            return f"{'Paused' if verb == 'pause' else 'Resumed'} {ids}."
        if verb == "unsubscribe":
            sub = channel_subs.unsubscribe(session, channel_id, _id(rest))
            return f"Unsubscribed #{sub.id}: no more digests on *{escape(', '.join(sub.interests))}*."
    except SubscriptionError as exc:
        return f"Sorry: {escape(str(exc))}"
    return USAGE


def _id(text: str) -> int:
    value = text.strip().lstrip("#")
    if not value.isdigit():
        raise SubscriptionError(f"{text!r} is not a subscription id (see `/paperboy list`)")
    return int(value)


def _describe(sub: Any) -> str:
    state = "paused" if sub.paused else "active"
    line = f"• #{sub.id} *{escape(', '.join(sub.interests or []))}*: {describe_schedule(sub)}, {state}"
    if sub.needs_attention:
        line += f" (needs attention: {escape(sub.needs_attention[:200])})"
    return line


@router.post("/interactions")
async def interaction(request: Request) -> Response:
    """The Relevant / Not relevant buttons: feedback for the channel's profile, then a private thanks."""
    form = await verified_form(request)
    try:
        payload = json.loads(form.get("payload") or "")
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise HTTPException(400, "payload is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return Response(status_code=200)  # other interaction types are not paperboy's
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)]
    buttons = [a for a in actions if a.get("action_id") in (RELEVANT, NOT_RELEVANT)]
    if not buttons:
        return Response(status_code=200)
    sessions = request.app.state.sessions
    settings = _settings(request)

    def run() -> str:
        with sessions() as session, session.begin():
            try:
                verdict = channel_subs.record_button(session, str(buttons[0].get("value") or ""), settings)
            except TokenError as exc:
                return f"Sorry: {escape(str(exc))}."
            word = "relevant" if verdict.feedback.relevant else "not relevant"
            return f"Noted: *{escape(verdict.paper_title[:300])}* is {word} for this channel's digests."

    text = await run_in_threadpool(run)
    response_url = str(payload.get("response_url") or "")
    task = BackgroundTask(_acknowledge, response_url, text, settings) if response_url else None
    return Response(status_code=200, background=task)


def _acknowledge(response_url: str, text: str, settings: Settings) -> None:
    """Tell the person who clicked, privately, through the response_url Slack gave with the click."""
    if not _trusted_response_url(response_url, settings):
        return
    hook = WebhookClient(url=response_url, timeout=10, logger=QUIET_SDK_LOG, retry_handlers=[])
    # A missing thank-you is not worth an error: the feedback is already stored.
    with contextlib.suppress(OSError, ValueError):
        hook.send_dict({"response_type": "ephemeral", "replace_original": False, "text": text})


def _trusted_response_url(url: str, settings: Settings) -> bool:
    # Only Slack's own hosts (or the configured API host: the loopback server in tests) get a request,
    # so a signed-but-odd payload cannot make paperboy call an arbitrary address.
    parts = urlsplit(url)
    api = urlsplit(settings.slack_api_url)
    if parts.hostname is None:
        return False
    if parts.scheme == "https" and (
        parts.hostname == "hooks.slack.com" or parts.hostname.endswith(".slack.com")
    ):
        return True
    return (parts.scheme, parts.hostname, parts.port) == (api.scheme, api.hostname, api.port)
