"""What Slack's error answers mean for sending again (DESIGN convention 2: classified in one place).

A 429 (or `ratelimited`) waits for its Retry-After; 5xx answers are transient; the codes in PERMANENT
cannot be fixed by sending again and make the delivery core mark the subscription as needing
attention, with the hint given here; other 4xx answers (webhooks) are permanent too; an unknown
error code on a 200 answer is left to the delivery core's retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.channels.base import DeliveryError

# Answers that sending again cannot fix, with what a person should do about them.
PERMANENT: dict[str, str] = {
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "invite the paperboy app to the channel",
    "invalid_auth": "the token is not valid",
    "account_inactive": "the token belongs to a deactivated user or app",
    "token_revoked": "the token was revoked: reinstall the app",
    "token_expired": "the token expired: reinstall the app",
    "not_authed": "no token was sent",
    "missing_scope": "the app needs the chat:write scope",
    "is_archived": "the channel is archived",
    "channel_is_archived": "the channel is archived",
    "restricted_action": "the workspace does not allow the app to post here",
    "team_access_not_granted": "the token has no access to this workspace",
    "ekm_access_denied": "the workspace's keys deny access",
    "no_permission": "the app may not post here",
    "team_disabled": "the workspace is disabled",
    "no_service": "the incoming webhook was removed or disabled",
    "no_service_id": "the incoming webhook URL is not valid",
    "no_team": "the incoming webhook URL is not valid",
    "invalid_token": "the incoming webhook URL is not valid",
    "action_prohibited": "the workspace does not allow this webhook to post",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "invalid_blocks": "Slack refused the message's blocks (a paperboy bug)",
    "invalid_blocks_format": "Slack refused the message's blocks (a paperboy bug)",
    "msg_too_long": "the message is too long (a paperboy bug)",
    "invalid_payload": "Slack refused the message (a paperboy bug)",
    "invalid_arguments": "Slack refused the message (a paperboy bug)",
}
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


@dataclass(frozen=True)
class Failure:
    """What an error means: the DeliveryError to raise, and whether (after how long) to try again."""

    error: DeliveryError
    wait: float | None  # seconds to wait before trying again in-process; None: give up now


def classify(status: int, code: str, headers: Any, where: str) -> Failure:
    """What an error answer from Slack means for sending again."""
    if status == 429 or code in RATE_LIMITED:
        wait = retry_after(headers)
        return Failure(
            DeliveryError(
                f"Slack rate limit on {where}: retry after {wait:g}s", permanent=False, retry_after=wait
            ),
            wait,
        )
    if code in PERMANENT:
        return Failure(DeliveryError(f"Slack {code} on {where}: {PERMANENT[code]}", permanent=True), None)
    if status >= 500 or not code:
        return Failure(DeliveryError(f"Slack answered HTTP {status} on {where}", permanent=False), 1.0)
    if 400 <= status < 500:  # a webhook's other refusals: sending the same again will not help
        return Failure(DeliveryError(f"Slack {code[:100]} (HTTP {status}) on {where}", permanent=True), None)
    # An error code paperboy does not know (HTTP 200, ok=false): let the delivery core try later.
    return Failure(DeliveryError(f"Slack {code[:100]} on {where}", permanent=False), None)


def error_code(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("error") or "")
    return ""


def retry_after(headers: Any) -> float:
    value = None
    for key, raw in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            value = raw[0] if isinstance(raw, list) and raw else raw
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
