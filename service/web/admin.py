"""The admin JSON API under /api/admin: subscribers, subscriptions, sources, ingest runs, deliveries.

Every request carries `Authorization: Bearer <ADMIN_TOKEN>`; with no ADMIN_TOKEN set the API is off."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.models import Delivery, IngestRun, Source, Subscriber, Subscription, utcnow
from service.web.admin_schemas import (
    MAX_ID,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPaperOut,
    Error,
    IngestRunOut,
    Page,
    SourceIn,
    SourceOut,
    SourcePatch,
    SubscriberOut,
    SubscriberPatch,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionStatus,
)
from service.web.gate import ADMIN_MAX_BYTES
from service.web.preferences import reschedule, shown_interests

M = TypeVar("M")

_bearer = HTTPBearer(auto_error=False, description="the ADMIN_TOKEN setting")


def admin_refusal(expected: SecretStr | None, authorization: str | None) -> tuple[int, str] | None:
    """Why a request with this Authorization header may not use the admin API (None: it may).

    Runs in the request gate (service/web/gate.py) before the body is read, and again as the router
    dependency; the token is compared in constant time."""
    if expected is None or not expected.get_secret_value():
        return 503, "the admin API is disabled: set ADMIN_TOKEN"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    ):
        return 401, "a valid admin token is required"
    return None


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Lets the request through only with the configured admin token."""
    given = f"Bearer {credentials.credentials}" if credentials else None
    refusal = admin_refusal(request.app.state.settings.admin_token, given)
    if refusal is not None:
        status, detail = refusal
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        raise HTTPException(status, detail, headers=headers)


def admin_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    max_body_size=ADMIN_MAX_BYTES,
    dependencies=[Depends(require_admin)],
    responses={400: {"model": Error}, 401: {"model": Error}, 503: {"model": Error}},
)

DB = Annotated[Session, Depends(admin_session)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error}}


def _page(session: Session, stmt: Select[Any], limit: int, offset: int) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(limit).offset(offset)))
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _get(session: Session, model: type[M], id_: int, label: str) -> M:
    row = session.get(model, id_)
    if row is None:
        raise HTTPException(404, f"no {label} with id {id_}")
    return row


# --- subscribers ---------------------------------------------------------------------------------


@router.get("/subscribers", response_model=Page[SubscriberOut])
def list_subscribers(
    session: DB,
    email: Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    verified: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Subscribers, newest first; `email` filters on a case-insensitive substring."""
    stmt = select(Subscriber).order_by(Subscriber.id.desc())
    if email:
        stmt = stmt.where(func.lower(Subscriber.email).contains(email.lower(), autoescape=True))
    if verified is not None:
        stmt = stmt.where(Subscriber.verified == verified)
    return _page(session, stmt, limit, offset)


@router.get("/subscribers/{subscriber_id}", response_model=SubscriberOut, responses=NOT_FOUND)
def get_subscriber(session: DB, subscriber_id: Id) -> Subscriber:
    return _get(session, Subscriber, subscriber_id, "subscriber")


@router.patch("/subscribers/{subscriber_id}", response_model=SubscriberOut, responses=NOT_FOUND)
def update_subscriber(session: DB, subscriber_id: Id, patch: SubscriberPatch) -> Subscriber:
    subscriber = _get(session, Subscriber, subscriber_id, "subscriber")
    for field, value in patch.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(subscriber, field, value)
    session.commit()
    return subscriber


@router.delete("/subscribers/{subscriber_id}", status_code=204, responses=NOT_FOUND)
def delete_subscriber(session: DB, subscriber_id: Id) -> Response:
    """Erases a subscriber with their profiles, subscriptions, deliveries and feedback."""
    _get(session, Subscriber, subscriber_id, "subscriber")
    # A Core DELETE lets the database's ON DELETE CASCADE remove everything that belongs to them.
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber_id))
    session.commit()
    return Response(status_code=204)


# --- subscriptions -------------------------------------------------------------------------------


@router.get("/subscriptions", response_model=Page[SubscriptionOut])
def list_subscriptions(
    session: DB,
    subscriber_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: SubscriptionStatus | None = None,
    channel: Annotated[str | None, Query(max_length=20, pattern=r"^[a-z]+$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    stmt = select(Subscription).order_by(Subscription.id.desc())
    if subscriber_id is not None:
        stmt = stmt.where(Subscription.subscriber_id == subscriber_id)
    if status is not None:
        stmt = stmt.where(Subscription.status == status)
    if channel is not None:
        stmt = stmt.where(Subscription.channel == channel)
    return _page(session, stmt, limit, offset)


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut, responses=NOT_FOUND)
def get_subscription(session: DB, subscription_id: Id) -> Subscription:
    return _get(session, Subscription, subscription_id, "subscription")


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses={**NOT_FOUND, 409: {"model": Error}},
)
def update_subscription(session: DB, subscription_id: Id, patch: SubscriptionPatch) -> Subscription:
    """Changes when and whether a subscription is delivered."""
    subscription = _get(session, Subscription, subscription_id, "subscription")
    changes = patch.model_dump(exclude_unset=True)
    if changes.pop("clear_needs_attention", False):
        subscription.needs_attention = None
    if "query" in changes:
        _set_query(subscription, changes.pop("query"))
    if changes.get("send_time") is not None:
        changes["send_time"] = dt.time.fromisoformat(changes["send_time"])
    for field, value in changes.items():
        if value is not None:
            setattr(subscription, field, value)
    if subscription.cadence == "weekly" and subscription.weekday is None:
        subscription.weekday = 0
    if changes.keys() & {"cadence", "weekday", "send_time", "timezone", "status"}:
        reschedule(subscription, utcnow())
    session.commit()
    return subscription


def _set_query(subscription: Subscription, query: str | None) -> None:
    """The query filters each of the subscription's interests; removing it must leave them matchable."""
    if query is None:
        return
    for interest in shown_interests(subscription):
        if not query and not (interest.keywords or "").strip() and not interest.seeds:
            raise HTTPException(
                409, f"interest {interest.name!r} is only its query: removing it leaves nothing to match"
            )
        interest.query = query or None


@router.delete("/subscriptions/{subscription_id}", status_code=204, responses=NOT_FOUND)
def delete_subscription(session: DB, subscription_id: Id) -> Response:
    _get(session, Subscription, subscription_id, "subscription")
    session.execute(delete(Subscription).where(Subscription.id == subscription_id))
    session.commit()
    return Response(status_code=204)


# --- sources -------------------------------------------------------------------------------------


@router.get("/sources", response_model=Page[SourceOut])
def list_sources(session: DB, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return _page(session, select(Source).order_by(Source.id.desc()), limit, offset)


@router.post("/sources", response_model=SourceOut, status_code=201, responses={409: {"model": Error}})
def create_source(session: DB, body: SourceIn) -> Source:
    if session.scalar(select(Source.id).where(Source.name == body.name)) is not None:
        raise HTTPException(409, f"a source named {body.name!r} already exists")
    source = Source(**body.model_dump())
    session.add(source)
    try:
        session.commit()
    except IntegrityError as exc:  # created concurrently under the same name
        session.rollback()
        raise HTTPException(409, f"a source named {body.name!r} already exists") from exc
    return source


@router.get("/sources/{source_id}", response_model=SourceOut, responses=NOT_FOUND)
def get_source(session: DB, source_id: Id) -> Source:
    return _get(session, Source, source_id, "source")


@router.patch("/sources/{source_id}", response_model=SourceOut, responses=NOT_FOUND)
def update_source(session: DB, source_id: Id, patch: SourcePatch) -> Source:
    source = _get(session, Source, source_id, "source")
    for field, value in patch.model_dump(exclude_unset=True).items():
        if value is not None or field == "format":  # format None means "detect"
            setattr(source, field, value)
    session.commit()
    return source


@router.delete("/sources/{source_id}", status_code=204, responses=NOT_FOUND)
def delete_source(session: DB, source_id: Id) -> Response:
    """Stops polling a feed; the papers it brought stay."""
    _get(session, Source, source_id, "source")
    session.execute(delete(Source).where(Source.id == source_id))
    session.commit()
    return Response(status_code=204)


# --- ingest runs and deliveries (read-only: they are the record of what happened) ----------------


@router.get("/ingest-runs", response_model=Page[IngestRunOut])
def list_ingest_runs(
    session: DB,
    status: Annotated[str | None, Query(max_length=20, pattern=r"^[a-z]+$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    stmt = select(IngestRun).order_by(IngestRun.id.desc())
    if status is not None:
        stmt = stmt.where(IngestRun.status == status)
    return _page(session, stmt, limit, offset)


@router.get("/ingest-runs/{run_id}", response_model=IngestRunOut, responses=NOT_FOUND)
def get_ingest_run(session: DB, run_id: Id) -> IngestRun:
    return _get(session, IngestRun, run_id, "ingest run")


@router.get("/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    session: DB,
    subscription_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[str | None, Query(max_length=20, pattern=r"^[a-z]+$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    stmt = select(Delivery).order_by(Delivery.id.desc())
    if subscription_id is not None:
        stmt = stmt.where(Delivery.subscription_id == subscription_id)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    return _page(session, stmt, limit, offset)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=NOT_FOUND)
def get_delivery(session: DB, delivery_id: Id) -> DeliveryDetail:
    delivery = session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .options(selectinload(Delivery.papers), selectinload(Delivery.archived_papers))
    )
    if delivery is None:
        raise HTTPException(404, f"no delivery with id {delivery_id}")
    # Papers past the candidate window live in archived_papers (service.delivery.retention).
    detail = DeliveryDetail.model_validate(delivery)
    held = [DeliveryPaperOut.model_validate(p) for p in [*delivery.papers, *delivery.archived_papers]]
    return detail.model_copy(update={"papers": sorted(held, key=lambda p: p.rank)})
