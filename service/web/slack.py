"""Slack's requests to paperboy: the `/paperboy` slash command and the digest buttons.

Every request is checked by service.web.slack_requests (signature, timestamp, replay across
processes, and the workspace it claims) before its body is even parsed.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import (
    ADD_SEED,
    EDIT_DIGEST,
    FOLLOW_AUTHORS,
    MORE_LIKE_THIS,
    NOT_RELEVANT,
    RELEVANT,
    escape,
)
from service.config import Settings
from service.slack_app import actions as app_actions
from service.slack_app import home, modal
from service.subscription import SubscriptionError, describe_schedule
from service.tokens import TokenError
from service.web.gate import SLACK_MAX_BYTES
from service.web.slack_requests import (
    after_ack,
    check_workspace,
    send_to_response_url,
    settings_of,
    verified_body,
)

router = APIRouter(prefix="/slack", include_in_schema=False, max_body_size=SLACK_MAX_BYTES)
log = logging.getLogger("paperboy.slack")
USAGE = (
    "*/paperboy* manages this channel's paper digests:\n"
    "• `/paperboy`: a form to set up (or change) this channel's digest\n"
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
async def slash_command(request: Request) -> Response:
    """`/paperboy` (the modal) or `/paperboy subscribe <words> | list | pause | resume | unsubscribe <id>`."""
    form = await verified_form(request)
    await check_workspace(request, form.get("team_id"), form.get("enterprise_id"))
    channel_id = form.get("channel_id", "")
    workspace = (form.get("team_id") or None, form.get("enterprise_id") or None)
    verb, _, rest = " ".join(form.get("text", "").split()).partition(" ")
    sessions = request.app.state.sessions
    settings = settings_of(request)
    if not verb and form.get("trigger_id"):
        # Acknowledged at once; views.open follows, within the trigger's 3 seconds.
        where = modal.Where(channel_id, *workspace)
        args = (settings, request.app.state.engine, where, form["trigger_id"])
        return Response(status_code=200, background=after_ack(app_actions.open_modal, *args))

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
    if not value.isdecimal():
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
    if not isinstance(payload, dict):
        raise HTTPException(400, "payload is not a JSON object")
    team_id, enterprise_id = payload_workspace(payload)
    await check_workspace(request, team_id, enterprise_id)
    if payload.get("type") == "view_submission":
        return await _submission(request, payload, team_id, enterprise_id)
    if payload.get("type") != "block_actions":
        return Response(status_code=200)  # other interaction types are not paperboy's
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)]
    buttons = [a for a in actions if a.get("action_id") in (RELEVANT, NOT_RELEVANT)]
    if not buttons:
        return await _app_action(request, payload, actions[0] if actions else {}, team_id, enterprise_id)
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

    return _then_tell(payload, await run_in_threadpool(run), settings)


def _then_tell(payload: dict[str, Any], text: str, settings: Settings) -> Response:
    """Acknowledge, then tell the clicker privately through the response_url Slack gave with the click."""
    response_url = str(payload.get("response_url") or "")
    message = {"response_type": "ephemeral", "replace_original": False, "text": text}
    task = after_ack(send_to_response_url, response_url, message, settings) if response_url else None
    return Response(status_code=200, background=task)


def payload_workspace(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(team_id, enterprise_id) an interaction payload claims to come from."""
    team, user, enterprise = (payload.get(k) for k in ("team", "user", "enterprise"))
    team_id = team.get("id") if isinstance(team, dict) else None
    if not team_id and isinstance(user, dict):  # org-wide installs: the clicker's own workspace
        team_id = user.get("team_id")
    enterprise_id = enterprise.get("id") if isinstance(enterprise, dict) else None
    return (str(team_id) if team_id else None), (str(enterprise_id) if enterprise_id else None)


async def _submission(
    request: Request, payload: dict[str, Any], team_id: str | None, enterprise_id: str | None
) -> Response:
    """The modal's Save: field errors in the answer, or the subscription saved and the Home tab redone."""
    view = payload.get("view")
    if not isinstance(view, dict) or view.get("callback_id") != modal.CALLBACK:
        return Response(status_code=200)
    settings, sessions = settings_of(request), request.app.state.sessions

    def run() -> dict[str, str]:
        with sessions() as session:
            try:
                errors = app_actions.submit_modal(session, settings, view, team_id)
            except ValueError:  # private_metadata that is not paperboy's
                errors = {"interests": "This form cannot be saved; open it again with /paperboy."}
            if errors:
                session.rollback()
            else:
                session.commit()
            return errors

    errors = await run_in_threadpool(run)
    if errors:
        return JSONResponse({"response_action": "errors", "errors": errors})
    user = _user_id(payload)
    engine = request.app.state.engine
    return Response(
        status_code=200,
        background=after_ack(home.publish_home, settings, engine, team_id, enterprise_id, user),
    )


async def _app_action(
    request: Request,
    payload: dict[str, Any],
    action: dict[str, Any],
    team_id: str | None,
    enterprise_id: str | None,
) -> Response:
    """A Home tab button, "more like this", "edit this digest" or an unfurl's "add as a seed"."""
    settings, engine = settings_of(request), request.app.state.engine
    action_id, value = str(action.get("action_id") or ""), str(action.get("value") or "")
    trigger_id, user = str(payload.get("trigger_id") or ""), _user_id(payload)
    channel = payload.get("channel")
    channel_id = str(channel.get("id") or "") if isinstance(channel, dict) else ""
    task: BackgroundTask | None = None
    if action_id in home.HOME_ACTIONS:
        args = (settings, engine, team_id, enterprise_id, user, action_id, value, trigger_id)
        task = after_ack(app_actions.home_action, *args)
    elif action_id == EDIT_DIGEST:
        args2 = (settings, engine, value, channel_id, team_id, enterprise_id, trigger_id)
        task = after_ack(app_actions.digest_edit, *args2)
    elif action_id in (MORE_LIKE_THIS, ADD_SEED, FOLLOW_AUTHORS):
        sessions = request.app.state.sessions

        def run() -> str:
            with sessions() as session, session.begin():
                return app_actions.paper_button(session, settings, value, channel_id)

        return _then_tell(payload, await run_in_threadpool(run), settings)
    return Response(status_code=200, background=task)


def _user_id(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    return str(user.get("id") or "") if isinstance(user, dict) else ""
