"""The admin API's view of mail that came back: GET /api/admin/mail-events and /api/admin/mail-rates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from service.mail.events import mail_rates
from service.models import MailEvent
from service.web.admin import DB, Limit, Offset, _page, require_admin
from service.web.admin_schemas import Error, Page

EventKind = Literal["hard_bounce", "soft_bounce", "complaint", "delivered", "unsubscribe", "refused"]
Provider = Literal["smtp", "dsn", "arf", "bounce", "mailbox", "ses", "postmark", "sendgrid", "mailgun"]

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={400: {"model": Error}, 401: {"model": Error}, 503: {"model": Error}},
)


class MailEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    address: str
    delivery_id: int | None
    subscription_id: int | None
    provider: str
    status: str | None
    detail: str
    raw_ref: str
    occurred_at: dt.datetime


class MailRatesOut(BaseModel):
    days: int
    sent: int
    events: dict[str, int]
    bounce_rate: float | None
    complaint_rate: float | None
    warnings: list[str]


@router.get("/mail-events", response_model=Page[MailEventOut])
def list_mail_events(
    session: DB,
    kind: EventKind | None = None,
    provider: Provider | None = None,
    address: Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Bounces, complaints, deliveries and unsubscribe requests, newest first."""
    stmt = select(MailEvent).order_by(MailEvent.occurred_at.desc(), MailEvent.id.desc())
    if kind is not None:
        stmt = stmt.where(MailEvent.kind == kind)
    if provider is not None:
        stmt = stmt.where(MailEvent.provider == provider)
    if address:
        stmt = stmt.where(func.lower(MailEvent.address).contains(address.lower(), autoescape=True))
    return _page(session, stmt, limit, offset)


@router.get("/mail-rates", response_model=MailRatesOut)
def get_mail_rates(session: DB, days: Annotated[int, Query(ge=1, le=90)] = 7) -> dict[str, Any]:
    """Email sent, and the bounce and complaint rates over the last `days` days, with warnings."""
    return mail_rates(session, dt.datetime.now(dt.UTC), days).as_dict()
