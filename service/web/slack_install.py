"""The "Add to Slack" page and the OAuth redirect back from Slack (service.slack_app.oauth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.slack_app import oauth
from service.web import views
from service.web.gate import SLACK_MAX_BYTES
from service.web.slack_requests import settings_of

router = APIRouter(prefix="/slack", include_in_schema=False, max_body_size=SLACK_MAX_BYTES)


@router.get("/install")
async def install_page(request: Request) -> Response:
    """A page with the "Add to Slack" button, carrying a fresh single-use state."""
    settings = settings_of(request)
    if not oauth.configured(settings):
        return views.error_page(request, 404, "This paperboy is not set up as a Slack app.")
    engine = request.app.state.engine
    url, state = await run_in_threadpool(oauth.start, settings, engine)
    response = views.render(request, "slack_install.html.j2", {"authorize_url": url})
    response.headers["set-cookie"] = oauth.state_cookie(state, settings)
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/oauth_redirect")
async def oauth_redirect(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """Slack sends the installer back here with a code (or an error) and the state."""
    settings = settings_of(request)
    if not oauth.configured(settings):
        return views.error_page(request, 404, "This paperboy is not set up as a Slack app.")
    if error:
        return views.error_page(request, 400, "The install was cancelled in Slack; nothing was changed.")
    engine = request.app.state.engine
    cookie = request.headers.get("cookie")
    try:
        done = await run_in_threadpool(oauth.finish, settings, engine, code, state, cookie)
    except oauth.InstallError as exc:
        return views.error_page(request, 400, str(exc))
    team = done.team_name or done.team_id or "your organisation"
    response = views.render(request, "slack_installed.html.j2", {"team": team, "resumed": done.resumed})
    response.headers.append("set-cookie", f"{oauth.COOKIE}=; Path=/slack/; Max-Age=0")
    return response
