"""The OAuth v2 install ("Add to Slack"): slack_sdk's authorize URL, state store and oauth.v2.access.

The install page issues a state (stored in `slack_oauth_states`, ten minutes, single use) and sets it in
a cookie too, so the redirect back is accepted only in the browser that started it. The code Slack
sends back is exchanged for the bot token, which is stored sealed (service.slack_app.installs).
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator, OAuthStateUtils
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.config import Settings
from service.slack_app.installs import QUIET, InstallationStore, OAuthStateStore, api_base, resume_workspace

# What paperboy calls, and why: commands (/paperboy), chat:write (digests, previews), links:read and
# links:write (unfurling paper links), channels:read and groups:read (App Home: the user's channels).
BOT_SCOPES = ("commands", "chat:write", "links:read", "links:write", "channels:read", "groups:read")
COOKIE = "slack-app-oauth-state"


class InstallError(Exception):
    """The install could not finish; the message is safe to show (no token, no secret)."""


def redirect_uri(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/slack/oauth_redirect"


def configured(settings: Settings) -> bool:
    return bool(settings.slack_client_id and settings.slack_client_secret)


def start(settings: Settings, engine: Engine) -> tuple[str, str]:
    """(authorize URL, state) for a new install; the state is also stored for the redirect."""
    state = OAuthStateStore(engine).issue()
    generator = AuthorizeUrlGenerator(
        client_id=settings.slack_client_id or "",
        scopes=list(BOT_SCOPES),
        redirect_uri=redirect_uri(settings),
        authorization_url=settings.slack_authorize_url,
    )
    return generator.generate(state), state


def state_cookie(state: str, settings: Settings) -> str:
    secure = "; Secure" if settings.base_url.startswith("https://") else ""
    return f"{COOKIE}={state}; HttpOnly; Path=/slack/; Max-Age=600; SameSite=Lax{secure}"


def same_browser(state: str, cookie_header: str | None) -> bool:
    utils = OAuthStateUtils(cookie_name=COOKIE)
    return utils.is_valid_browser(state, {"cookie": cookie_header} if cookie_header else {})


@dataclass(frozen=True)
class Installed:
    team_id: str | None
    team_name: str | None
    enterprise_id: str | None
    resumed: int  # subscriptions an earlier uninstall had paused


def finish(settings: Settings, engine: Engine, code: str, state: str, cookie_header: str | None) -> Installed:
    """Check the state, exchange the code, store the installation; InstallError otherwise."""
    if not code or not state:
        raise InstallError("Slack did not send an authorization code back (was the install cancelled?)")
    if not same_browser(state, cookie_header):
        raise InstallError("this install was started in another browser, or too long ago: start again")
    if not OAuthStateStore(engine).consume(state):
        raise InstallError("this install link has expired or was already used: start again")
    client = WebClient(base_url=api_base(settings), timeout=10, logger=QUIET, retry_handlers=[])
    secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
    try:
        answer = client.oauth_v2_access(
            client_id=settings.slack_client_id or "",
            client_secret=secret,
            code=code,
            redirect_uri=redirect_uri(settings),
        )
        bot_token = answer.get("access_token")
        bot = client.auth_test(token=bot_token) if bot_token else None
    except SlackApiError as exc:
        raise InstallError(f"Slack refused the install: {exc.response.get('error')}") from exc
    except OSError as exc:
        raise InstallError(f"Slack could not be reached: {type(exc).__name__}") from exc
    team = answer.get("team") or {}
    enterprise = answer.get("enterprise") or {}
    installer = answer.get("authed_user") or {}
    webhook = answer.get("incoming_webhook") or {}
    is_org = bool(answer.get("is_enterprise_install"))
    installation = Installation(
        app_id=answer.get("app_id"),
        enterprise_id=enterprise.get("id"),
        enterprise_name=enterprise.get("name"),
        enterprise_url=bot.get("url") if bot is not None and is_org else None,
        team_id=team.get("id"),
        team_name=team.get("name"),
        bot_token=bot_token,
        bot_id=bot.get("bot_id") if bot is not None else None,
        bot_user_id=answer.get("bot_user_id"),
        bot_scopes=answer.get("scope"),
        user_id=installer.get("id") or "",
        user_token=installer.get("access_token"),
        user_scopes=installer.get("scope"),
        incoming_webhook_url=webhook.get("url"),
        incoming_webhook_channel=webhook.get("channel"),
        incoming_webhook_channel_id=webhook.get("channel_id"),
        incoming_webhook_configuration_url=webhook.get("configuration_url"),
        is_enterprise_install=is_org,
        token_type=answer.get("token_type"),
    )
    InstallationStore(settings, engine).save(installation)
    with Session(engine) as session, session.begin():
        resumed = resume_workspace(session, installation.team_id, installation.enterprise_id)
    return Installed(installation.team_id, installation.team_name, installation.enterprise_id, resumed)
