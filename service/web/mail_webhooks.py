"""Provider event webhooks on the web app: POST /webhooks/mail/{ses,postmark,sendgrid,mailgun}.

Each body is read up to WEBHOOK_MAX_BYTES (1 MiB by default, above the app's 512 KiB form limit; a
provider's batch is smaller) and refused with 413 beyond it, verified (service.mail.providers) before
it is parsed, then stored and acted on through service.mail.intake like returned mail.
Answers: 200 with what was recorded; 400 malformed; 401/403 not genuine; 413 too large; 503 the
provider's key is not configured.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.mail.intake import record
from service.mail.providers import (
    WebhookRejected,
    mailgun_reports,
    postmark_reports,
    sendgrid_reports,
    ses_reports,
)
from service.mail.reports import Report
from service.oplog import log_event

log = logging.getLogger("paperboy.mail")
# The app's form limit (512 KiB) is too small for a provider's batch; this router states its own
# ceiling, and WEBHOOK_MAX_BYTES (default 1 MiB) is enforced below it while the body streams.
WEBHOOK_BODY_CEILING = 10 * 1024 * 1024
router = APIRouter(prefix="/webhooks/mail", include_in_schema=False, max_body_size=WEBHOOK_BODY_CEILING)


async def _body(request: Request, settings: Settings) -> bytes:
    limit = settings.webhook_max_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _store(request: Request, provider: str, reports: list[Report]) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    now = dt.datetime.now(dt.UTC)
    with request.app.state.sessions() as session, session.begin():
        done = [
            record(session, r, settings=settings, raw_ref=f"{provider}:{r.report_id}", now=now)
            for r in reports
        ]
    return {"recorded": sum(not d.duplicate for d in done), "duplicates": sum(d.duplicate for d in done)}


def _rejected(provider: str, exc: WebhookRejected) -> HTTPException:
    log_event(
        log,
        "webhook_rejected",
        level=logging.WARNING,
        provider=provider,
        status=exc.status_code,
        why=exc.message,
    )
    return HTTPException(exc.status_code, exc.message)


async def _handle(
    request: Request, provider: str, parse: Callable[[bytes, Settings], list[Report]]
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    body = await _body(request, settings)
    try:
        reports = parse(body, settings)
    except WebhookRejected as exc:
        raise _rejected(provider, exc) from exc
    return await run_in_threadpool(_store, request, provider, reports)


@router.post("/ses")
async def ses(request: Request) -> dict[str, Any]:
    """Amazon SES bounce, complaint and delivery notifications, through an SNS HTTPS subscription."""
    settings: Settings = request.app.state.settings
    body = await _body(request, settings)
    try:
        message = ses_reports(body, settings)
    except WebhookRejected as exc:
        raise _rejected("ses", exc) from exc
    if message.type != "Notification":
        # Confirming the subscription means opening its SubscribeURL: the operator does that (paperboy
        # fetches nothing); the URL holds a one-time confirmation token, not a secret of ours.
        log_event(
            log,
            "ses_subscription_message",
            level=logging.WARNING,
            type=message.type,
            topic=message.topic,
            subscribe_url=message.subscribe_url,
        )
    return {**await run_in_threadpool(_store, request, "ses", message.reports), "type": message.type}


@router.post("/postmark")
async def postmark(request: Request) -> dict[str, Any]:
    """Postmark bounce, spam complaint and delivery webhooks (basic auth on the webhook URL)."""
    auth = request.headers.get("authorization")
    return await _handle(request, "postmark", lambda body, s: postmark_reports(body, auth, s))


@router.post("/sendgrid")
async def sendgrid(request: Request) -> dict[str, Any]:
    """SendGrid's signed event webhook."""
    signature = request.headers.get("x-twilio-email-event-webhook-signature")
    timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp")
    return await _handle(request, "sendgrid", lambda body, s: sendgrid_reports(body, signature, timestamp, s))


@router.post("/mailgun")
async def mailgun(request: Request) -> dict[str, Any]:
    """Mailgun's webhooks (JSON, with the signature inside)."""
    return await _handle(request, "mailgun", mailgun_reports)
