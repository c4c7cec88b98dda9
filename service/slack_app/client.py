"""A slack_sdk WebClient for one workspace: its installation's bot token (or SLACK_BOT_TOKEN)."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.web import WebClient
from sqlalchemy.orm import Session

from service.config import Settings
from service.slack_app.installs import QUIET, api_base, bot_token


class NotInstalled(Exception):
    """No token to act in this workspace with."""


def workspace_client(
    session: Session,
    settings: Settings,
    team_id: str | None,
    enterprise_id: str | None,
    *,
    retry_reset: bool = False,
) -> WebClient:
    """``retry_reset``: try once more when the connection drops. For views.open: its trigger_id lasts
    3 s, so a modal lost to a reset connection is lost for good, and Slack refuses a used trigger_id,
    so a retry after a modal did open changes nothing. Calls that post stay single (a retry could
    post twice)."""
    token = bot_token(session, settings, team_id, enterprise_id)
    if not token:
        raise NotInstalled(f"paperboy is not installed in workspace {team_id or enterprise_id}")
    timeout = max(1, int(min(settings.http_timeout_s, 10)))
    retries = [ConnectionErrorRetryHandler(max_retry_count=1)] if retry_reset else []
    return WebClient(
        token=token, base_url=api_base(settings), timeout=timeout, logger=QUIET, retry_handlers=retries
    )


def user_channels(client: WebClient, user_id: str, limit: int = 1000) -> list[str]:
    """The channels (public and private) this user is in, as far as the bot can see them."""
    channels: list[str] = []
    cursor = None
    while len(channels) < limit:
        page = client.users_conversations(
            user=user_id,
            types="public_channel,private_channel",
            limit=200,
            cursor=cursor,
            exclude_archived=True,
        )
        channels.extend(
            str(c["id"]) for c in page.get("channels") or [] if isinstance(c, dict) and c.get("id")
        )
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return channels
