"""Admin API bulk endpoints: import and export subscriptions in the CLI's CSV / JSON Lines format."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from service.bulk import (
    BulkFormatError,
    export_records,
    import_subscriptions,
    read_records,
    send_confirmations,
    write_records,
)
from service.web.admin import DB, require_admin
from service.web.admin_schemas import Error

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={400: {"model": Error}, 401: {"model": Error}, 503: {"model": Error}},
)

Format = Literal["csv", "jsonl"]


class ImportIn(BaseModel):
    format: Format
    content: str = Field(max_length=64 * 1024 * 1024, description="the whole file, as text")
    dry_run: bool = False
    confirmed: bool = Field(False, description="the addresses opted in elsewhere: active at once")
    consent_source: str | None = Field(None, max_length=300, description="required when confirmed")
    send_confirmations: bool = Field(True, description="email new pending addresses their confirm link")


class RowErrorOut(BaseModel):
    line: int
    field: str
    message: str


class ImportOut(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: int
    dry_run: bool
    error_rows: list[RowErrorOut]
    confirmations_queued: int


@router.post("/subscriptions/import", response_model=ImportOut)
def import_bulk(request: Request, session: DB, body: ImportIn, background: BackgroundTasks) -> dict[str, Any]:
    """Import subscriptions; idempotent; per-row errors with line numbers, the other rows imported."""
    try:
        report = import_subscriptions(
            session,
            read_records(io.StringIO(body.content, newline=""), body.format),
            confirmed=body.confirmed,
            consent_source=body.consent_source,
            dry_run=body.dry_run,
        )
    except BulkFormatError as exc:
        session.rollback()
        raise HTTPException(400, str(exc)) from exc
    if body.dry_run:
        session.rollback()
    else:
        session.commit()
    queued = 0
    if not body.dry_run and body.send_confirmations and report.to_confirm:
        queued = len(report.to_confirm)
        background.add_task(_send, request, report.to_confirm)
    return {
        **report.summary(),
        "error_rows": [vars(e) for e in report.errors],
        "confirmations_queued": queued,
    }


def _send(request: Request, subscriber_ids: list[int]) -> None:
    with request.app.state.sessions() as session:
        send_confirmations(session, subscriber_ids, request.app.state.settings)


class ExportOut(BaseModel):
    format: Format
    count: int
    content: str  # the file, in the format `POST /subscriptions/import` takes back


@router.get("/subscriptions/export", response_model=ExportOut)
def export_bulk(
    session: DB, format: Annotated[Format, Query()] = "csv", include_unsubscribed: bool = False
) -> dict[str, Any]:
    """Every email subscription in the import format."""
    out = io.StringIO()
    count = write_records(export_records(session, include_unsubscribed=include_unsubscribed), format, out)
    return {"format": format, "count": count, "content": out.getvalue()}
