"""Slack's requests to paperboy: the `/paperboy` slash command and the digest buttons.

Every request is checked by service.web.slack_requests (signature, timestamp, replay across
processes, and the workspace it claims) before its body is even parsed.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
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
from service.web.slack_requests import check_workspace, settings_of, verified_body

router = APIRouter(prefix="/slack", include_in_schema=False)
log = logging.getLogger("paperboy.slack")
USAGE = (
    "*/paperboy* manages this channel's paper digests:\n"
    "• `/paperboy subscribe sparse attention, kv cache`: a daily digest (08:00 UTC) on these words\n"
    "• `/paperboy list`: this channel's subscriptions\n"
    "• `/paperboy pause [id]` and `/paperboy resume [id]`: stop and restart digests\n"
    "• `/paperboy unsubscribe <id>`: end one subscription"
)


async def verified_form(request: Request) -> dict[str, str]:
    """The form fields of a proven Slack request (service.web.slack_requests); 401 otherwise."""
    body = await verified_body(request)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "the body is not UTF-8 form data") from exc


def _reply(text: str, *, public: bool = False) -> JSONResponse:
    return JSONResponse({"response_type": "in_channel" if public else "ephemeral", "text": text})


@router.post("/commands")
async def slash_command(request: Request) -> JSONResponse:
    """`/paperboy subscribe <words> | list | pause [id] | resume [id] | unsubscribe <id>`."""
    form = await verified_form(request)
    await check_workspace(request, form.get("team_id"), form.get("enterprise_id"))
    channel_id = form.get("channel_id", "")
    workspace = (form.get("team_id") or None, form.get("enterprise_id") or None)
    verb, _, rest = " ".join(form.get("text", "").split()).partition(" ")
    sessions = request.app.state.sessions
    settings = settings_of(request)

    def run() -> str:
        with sessions() as session, session.begin():
            return run_command(session, settings, channel_id, verb.lower(), rest, workspace)

    return _reply(await run_in_threadpool(run))


def run_command(
    session: Session,
    settings: Settings,
    channel_id: str,
    verb: str,
    rest: str,
    workspace: tuple[str | None, str | None] = (None, None),
) -> str:
    """The reply to one slash command (mrkdwn); input errors become replies, never 500s."""
    try:
        channel_id = channel_subs.check_channel_id(channel_id)
        if verb == "subscribe":
            team_id, enterprise_id = workspace
            request = channel_subs.SlackSubscribe(
                channel_id=channel_id, interest=rest, team_id=team_id, enterprise_id=enterprise_id
            )
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
    except json.JSONDecodeError as exc:
        raise HTTPException(400, "payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise HTTPException(400, "payload is not a JSON object")
    await check_workspace(request, *payload_workspace(payload))
    if payload.get("type") != "block_actions":
        return Response(status_code=200)  # other interaction types are not paperboy's
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)]
    buttons = [a for a in actions if a.get("action_id") in (RELEVANT, NOT_RELEVANT)]
    if not buttons:
        return Response(status_code=200)
    sessions = request.app.state.sessions
    settings = settings_of(request)

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


def payload_workspace(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(team_id, enterprise_id) an interaction payload claims to come from."""
    team, user, enterprise = (payload.get(k) for k in ("team", "user", "enterprise"))
    team_id = team.get("id") if isinstance(team, dict) else None
    if not team_id and isinstance(user, dict):  # org-wide installs: the clicker's own workspace
        team_id = user.get("team_id")
    enterprise_id = enterprise.get("id") if isinstance(enterprise, dict) else None
    return (str(team_id) if team_id else None), (str(enterprise_id) if enterprise_id else None)


def _acknowledge(response_url: str, text: str, settings: Settings) -> None:
    """Tell the person who clicked, privately, through the response_url Slack gave with the click."""
    send_to_response_url(
        response_url, {"response_type": "ephemeral", "replace_original": False, "text": text}, settings
    )


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
