"""Slack's Events API: the URL check, uninstalls and revoked tokens, App Home opened, links shared.

Each event is acknowledged at once (Slack wants an answer within 3 seconds and retries otherwise);
the work it asks for runs after the answer, as a background task.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.config import Settings
from service.slack_app.installs import remove_workspace
from service.web.gate import SLACK_MAX_BYTES
from service.web.slack_requests import (
    after_ack,
    check_workspace,
    settings_of,
    verified_body,
    workspace_memory,
)

router = APIRouter(prefix="/slack", include_in_schema=False, max_body_size=SLACK_MAX_BYTES)
log = logging.getLogger("paperboy.slack")


def event_workspace(body: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """(team_id, enterprise_id, org-wide install) of an event callback."""
    auths = body.get("authorizations")
    auth = auths[0] if isinstance(auths, list) and auths and isinstance(auths[0], dict) else {}
    team_id = body.get("team_id") or auth.get("team_id")
    enterprise_id = body.get("enterprise_id") or auth.get("enterprise_id")
    return (
        str(team_id) if team_id else None,
        str(enterprise_id) if enterprise_id else None,
        bool(auth.get("is_enterprise_install")),
    )


@router.post("/events")
async def events(request: Request) -> Response:
    body_bytes = await verified_body(request)
    try:
        body = json.loads(body_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HTTPException(400, "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "the body is not a JSON object")
    if body.get("type") == "url_verification":  # Slack checking the Request URL, before any install
        return JSONResponse({"challenge": str(body.get("challenge") or "")})
    if body.get("type") != "event_callback" or not isinstance(body.get("event"), dict):
        return Response(status_code=200)
    team_id, enterprise_id, org_wide = event_workspace(body)
    await check_workspace(request, team_id, enterprise_id)
    if body["event"].get("type") in ("app_uninstalled", "tokens_revoked"):
        workspace_memory(request).forget(team_id, enterprise_id)
    settings, engine = settings_of(request), request.app.state.engine
    work = handle_event(body["event"], settings, engine, None if org_wide else team_id, enterprise_id)
    return Response(status_code=200, background=after_ack(work) if work else None)


def handle_event(
    event: dict[str, Any], settings: Settings, engine: Engine, team_id: str | None, enterprise_id: str | None
) -> Any:
    """The work an event asks for, to run after the acknowledgement (None: nothing to do)."""
    kind = event.get("type")
    if kind == "app_uninstalled":
        return lambda: _remove(settings, engine, team_id, enterprise_id, "app_uninstalled")
    if kind == "tokens_revoked":
        tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
        if tokens.get("bot"):  # user tokens are not paperboy's: only the bot's revocation matters
            return lambda: _remove(settings, engine, team_id, enterprise_id, "tokens_revoked")
        return None
    if kind == "app_home_opened" and event.get("tab", "home") == "home":
        from service.slack_app.home import publish_home

        user = str(event.get("user") or "")
        return lambda: publish_home(settings, engine, team_id, enterprise_id, user)
    if kind == "link_shared":
        from service.slack_app.unfurl import unfurl_links

        return lambda: unfurl_links(settings, engine, team_id, enterprise_id, event)
    return None


def _remove(
    settings: Settings, engine: Engine, team_id: str | None, enterprise_id: str | None, why: str
) -> None:
    with Session(engine) as session, session.begin():
        paused = remove_workspace(session, settings, team_id, enterprise_id, why)
    log.info(
        "slack: %s for workspace %s: tokens removed, %d subscriptions paused",
        why,
        team_id or enterprise_id,
        paused,
    )
