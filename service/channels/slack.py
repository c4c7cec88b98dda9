"""The Slack channel: a digest posted to a channel with a bot token, or through an incoming webhook.

A subscription's `secret` holds, sealed (service.secrets), either a bot token (xoxb-...) for
chat.postMessage to the channel id in `address`, or an incoming-webhook URL; with no secret the
workspace bot token SLACK_BOT_TOKEN is used. A long digest is a parent message plus thread replies.

Errors are classified in service.channels.slack_errors (DESIGN convention 2): a 429 is waited
out for its Retry-After (up to SLACK_MAX_WAIT_S) and tried again; 5xx answers and connection errors
are tried again a few times, then left to the delivery core's retry; channel_not_found,
not_in_channel, invalid_auth, account_inactive, token_revoked and their kin are permanent: the
delivery core then marks the subscription as needing attention. Each channel gets at most one
message per SLACK_RATE_PER_CHANNEL_S seconds, across threads (service.channels.slack_pacing).
Tokens and webhook URLs never reach a log line or an error message: slack_sdk gets a logger that
stays silent, since it would log webhook URLs.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from service.channels.base import DeliveryError
from service.channels.shared_limits import SharedChannelPacer
from service.channels.slack_blocks import SlackMessage, digest_messages
from service.channels.slack_errors import Failure, classify, error_code
from service.channels.slack_pacing import ChannelPacer, shared_pacer
from service.config import Settings
from service.digest.model import Digest
from service.models import Subscription
from service.secrets import MASK, Secret, SecretError, unseal

log = logging.getLogger("paperboy.slack")
# Not registered with logging's manager, so no configuration can turn it on.
QUIET_SDK_LOG = logging.Logger("paperboy.slack.sdk", level=logging.CRITICAL + 1)


@dataclass(frozen=True)
class SlackTarget:
    """Where a subscription's digest goes: a channel through a bot token, or a webhook."""

    kind: str  # "bot" | "webhook"
    credential: Secret  # the bot token, or the webhook URL
    channel: str  # channel id for "bot"; the webhook's name for "webhook"

    @property
    def pace_key(self) -> str:
        # Webhooks are paced per URL (one webhook posts to one channel), without keeping the URL.
        if self.kind == "webhook":
            return "webhook:" + hashlib.sha256(self.credential.reveal().encode()).hexdigest()[:16]
        return f"channel:{self.channel}"


def target_for(subscription: Subscription, settings: Settings) -> SlackTarget:
    """The subscription's Slack target; a permanent DeliveryError when it has no usable credential."""
    if subscription.secret:
        try:
            credential = unseal(subscription.secret, settings)
        except SecretError as exc:
            raise DeliveryError(f"Slack subscription {subscription.id}: {exc}", permanent=True) from exc
        if credential.reveal().startswith(("https://", "http://")):
            return SlackTarget("webhook", credential, subscription.address)
    elif subscription.slack_team_id or subscription.slack_enterprise_id:
        credential = _installed_token(subscription, settings)
    elif settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value():
        credential = Secret(settings.slack_bot_token.get_secret_value())
    else:
        raise DeliveryError(
            f"Slack subscription {subscription.id}: no bot token (set SLACK_BOT_TOKEN) and no stored one",
            permanent=True,
        )
    if not subscription.address.strip():
        raise DeliveryError(f"Slack subscription {subscription.id}: no channel id", permanent=True)
    return SlackTarget("bot", credential, subscription.address.strip())


def _installed_token(subscription: Subscription, settings: Settings) -> Secret:
    """The bot token of the installation of the subscription's workspace (or SLACK_BOT_TOKEN)."""
    from service.slack_app.installs import bot_token  # the app's stores import this module's siblings

    session = object_session(subscription)
    token = None
    if session is not None:
        token = bot_token(session, settings, subscription.slack_team_id, subscription.slack_enterprise_id)
    if not token:
        workspace = subscription.slack_team_id or subscription.slack_enterprise_id
        raise DeliveryError(
            f"Slack subscription {subscription.id}: paperboy is not installed in workspace {workspace}"
            " (Add to Slack again)",
            permanent=True,
        )
    return Secret(token)


class SlackChannel:
    """Posts digests to Slack. One instance serves a batch; clients are reused per credential."""

    name = "slack"

    def __init__(
        self,
        settings: Settings,
        *,
        pacer: ChannelPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.pacer = pacer or (
            SharedChannelPacer(settings)  # a channel's limit, across every worker
            if settings.redis_url
            else shared_pacer(settings.slack_rate_per_channel_s)
        )
        self._sleep = sleep
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    # --- the Channel interface ------------------------------------------------------------------

    def send(self, subscription: Subscription, digest: Digest) -> str:
        """Post the digest; returns the parent message's ts ("webhook:..." for a webhook)."""
        target = target_for(subscription, self.settings)
        messages = digest_messages(digest, self.settings)
        if target.kind == "webhook":
            return self._send_webhook(target, messages, digest)
        return self._send_bot(target, messages)

    def close(self) -> None:
        with self._lock:
            self._clients.clear()

    # --- bot token: chat.postMessage, parts as thread replies -----------------------------------

    def client(self, token: Secret) -> WebClient:
        with self._lock:
            key = hashlib.sha256(token.reveal().encode()).hexdigest()
            if key not in self._clients:
                self._clients[key] = WebClient(
                    token=token.reveal(),
                    base_url=_api_base(self.settings.slack_api_url),
                    timeout=int(self.settings.http_timeout_s),
                    logger=QUIET_SDK_LOG,
                    retry_handlers=[],  # retries are decided here, with the pacer, not inside the SDK
                )
            return self._clients[key]

    def _send_bot(self, target: SlackTarget, messages: list[SlackMessage]) -> str:
        client = self.client(target.credential)
        parent = self._call(target, lambda: client.chat_postMessage(**_payload(target.channel, messages[0])))
        ts, channel_id = str(parent["ts"]), str(parent.get("channel") or target.channel)
        for number, message in enumerate(messages[1:], start=2):
            try:
                self._call(
                    target,
                    lambda m=message: client.chat_postMessage(**_payload(channel_id, m), thread_ts=ts),
                )
            except DeliveryError as exc:
                return self._partial(ts, number, len(messages), exc)
        return ts

    # --- incoming webhook: parts as separate messages (a webhook cannot thread) -----------------

    def _send_webhook(self, target: SlackTarget, messages: list[SlackMessage], digest: Digest) -> str:
        hook = WebhookClient(
            url=target.credential.reveal(),
            timeout=int(self.settings.http_timeout_s),
            logger=QUIET_SDK_LOG,
            retry_handlers=[],
        )
        label = f"webhook:{digest.subscription_id}:{digest.period}"
        for number, message in enumerate(messages, start=1):
            try:
                self._call(target, lambda m=message: _webhook_post(hook, m))
            except DeliveryError as exc:
                if number == 1:
                    raise
                return self._partial(label, number, len(messages), exc)
        return f"{label}:{len(messages)}"

    # --- one call, retried as Slack's answer says -------------------------------------------------

    def _call(self, target: SlackTarget, post: Callable[[], Any]) -> Any:
        attempts = max(self.settings.slack_attempts, 1)
        for attempt in range(1, attempts + 1):
            self.pacer.wait(target.pace_key)
            try:
                return post()
            except SlackApiError as exc:
                failure = classify(
                    exc.response.status_code,
                    error_code(exc.response.data),
                    exc.response.headers,
                    _where(target),
                )
            except _WebhookFailed as exc:
                failure = classify(exc.status, exc.body.strip(), exc.headers, _where(target))
            except (URLError, OSError, http.client.HTTPException) as exc:
                # Connection refused or reset, timeouts, a half-read answer: the network, not the request.
                reason = _redact(str(getattr(exc, "reason", exc)), target)
                failure = Failure(
                    DeliveryError(f"Slack unreachable: {type(exc).__name__}: {reason}", permanent=False), 1.0
                )
            except ValueError as exc:  # urllib refusing the URL itself: a malformed webhook or API URL
                message = f"Slack URL for {_where(target)} is not valid: {_redact(str(exc), target)}"
                failure = Failure(DeliveryError(message, permanent=True), None)
            finally:
                self.pacer.done(target.pace_key)
            error = failure.error
            if failure.wait is None or attempt == attempts or failure.wait > self.settings.slack_max_wait_s:
                raise error
            log.info("slack %s: %s; trying again in %.1fs", _where(target), error, failure.wait)
            if error.retry_after is not None:
                self.pacer.hold(target.pace_key, failure.wait)  # the pacer then waits it out
            else:
                self._sleep(failure.wait * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _partial(self, ts: str, number: int, total: int, exc: DeliveryError) -> str:
        # The parent is in the channel: raising would make the delivery core post it all again, so the
        # delivery is recorded as sent, with the missing parts written into its message id and the log.
        log.warning("slack digest %s: part %d of %d could not be posted: %s", ts, number, total, exc)
        return f"{ts} partial: parts {number}-{total} of {total} not posted ({exc})"[:300]


class _WebhookFailed(Exception):
    def __init__(self, status: int, body: str, headers: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.headers = status, body, headers


def _webhook_post(hook: WebhookClient, message: SlackMessage) -> None:
    response = hook.send_dict(
        {"text": message.text, "blocks": message.blocks, "unfurl_links": False, "unfurl_media": False}
    )
    if response.status_code != 200 or response.body.strip() != "ok":
        raise _WebhookFailed(response.status_code, response.body or "", dict(response.headers or {}))


def _payload(channel: str, message: SlackMessage) -> dict[str, Any]:
    return {
        "channel": channel,
        "text": message.text,
        "blocks": message.blocks,
        "unfurl_links": False,  # arXiv previews would bury the digest
        "unfurl_media": False,
    }


def _api_base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _redact(text: str, target: SlackTarget) -> str:
    """An error text with the credential (and a webhook URL's path) masked, should it appear."""
    secret = target.credential.reveal()
    text = text.replace(secret, MASK)
    if target.kind == "webhook":
        path = urlsplit(secret).path
        if path.strip("/"):
            text = text.replace(path, "/" + MASK)
    return text[:500]


def _where(target: SlackTarget) -> str:
    return f"webhook {target.channel!r}" if target.kind == "webhook" else f"channel {target.channel}"


def needing_attention(session: Session, channel: str | None = "slack") -> list[Subscription]:
    """Live subscriptions stopped by a permanent channel error (for `paperboy status`), oldest first."""
    stmt = (
        select(Subscription)
        .where(Subscription.needs_attention.is_not(None), Subscription.status != "unsubscribed")
        .order_by(Subscription.id)
    )
    if channel is not None:
        stmt = stmt.where(Subscription.channel == channel)
    return list(session.scalars(stmt))
