"""SQLAlchemy 2 typed models: the whole schema. Changes go through Alembic only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    false,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; paperboy stores aware UTC datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: UTCDateTime()}


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


# --- papers and ingest -------------------------------------------------------------------------


class Paper(Timestamped, Base):
    """One paper, stored once whatever the number of dumps it appeared in."""

    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # "arxiv:2401.01234" or "title:<norm>"
    # Normalised title, so a paper first seen without an arXiv id is found again when a later dump
    # brings the id (and vice versa).
    title_key: Mapped[str] = mapped_column(String(300), index=True, default="", server_default="")
    arxiv_id: Mapped[str | None] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[Any]] = mapped_column(default=list)
    author_count: Mapped[int | None] = mapped_column(Integer)
    organization: Mapped[str | None] = mapped_column(String(300))
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    upvotes: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(500))
    code_url: Mapped[str | None] = mapped_column(String(500))
    links: Mapped[list[Any]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(300), default="")
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class PaperEmbedding(Base):
    """A paper's sentence embedding, computed once per model."""

    __tablename__ = "paper_embeddings"

    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ReaderModelRow(Base):
    """A profile's learned scorer (service.matching.reader_model), retrained on each feedback."""

    __tablename__ = "reader_models"

    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))  # the embedding model its weights belong to
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InterestVector(Base):
    """An interest's keywords as a sentence vector, for the batch path's vector screen."""

    __tablename__ = "interest_vectors"

    interest_id: Mapped[int] = mapped_column(ForeignKey("interests.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(32))  # of the embedded text: an edit re-embeds
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class IngestRun(Base):
    """One file or feed read: what it held and what became of it."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    format: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|done|skipped|failed
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class Source(Timestamped, Base):
    """An HTTP feed polled for new papers."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(40))  # None: detect
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_polled_at: Mapped[dt.datetime | None] = mapped_column()
    last_status: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)


# --- subscribers and profiles ------------------------------------------------------------------


class Subscriber(Timestamped, Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # too many hard bounces
    # Imported as already confirmed: where the consent was given (service/bulk.py), and when recorded.
    consent_source: Mapped[str | None] = mapped_column(String(300))
    consent_at: Mapped[dt.datetime | None] = mapped_column()
    # When a confirm link was last used: links signed before it no longer work (single use).
    confirmed_at: Mapped[dt.datetime | None] = mapped_column()

    profiles: Mapped[list[Profile]] = relationship(back_populates="subscriber")
    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="subscriber")


class Profile(Timestamped, Base):
    """A named set of interests: a person's, or a Slack channel's."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))

    subscriber: Mapped[Subscriber | None] = relationship(back_populates="profiles")
    interests: Mapped[list[Interest]] = relationship(
        back_populates="profile", cascade="all, delete-orphan", order_by="Interest.id"
    )
    feedback: Mapped[list[Feedback]] = relationship(back_populates="profile", cascade="all, delete-orphan")


class Interest(Timestamped, Base):
    """One interest: weighted keywords, a query, excluded terms, seed papers."""

    __tablename__ = "interests"
    __table_args__ = (UniqueConstraint("profile_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[str] = mapped_column(Text, default="")  # `"sparse attention"^2, kv cache`
    query: Mapped[str | None] = mapped_column(Text)  # query language
    exclude: Mapped[str] = mapped_column(Text, default="")  # comma-separated excluded terms
    seeds: Mapped[list[Any]] = mapped_column(default=list)  # paper ids
    authors: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # followed names
    threshold: Mapped[float | None] = mapped_column(Float)
    top_k: Mapped[int | None] = mapped_column(Integer)

    profile: Mapped[Profile] = relationship(back_populates="interests")


class Feedback(Timestamped, Base):
    """A subscriber's verdict on one paper; the latest verdict wins."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("profile_id", "paper_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    relevant: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(20), default="cli")  # cli|email|web|slack

    profile: Mapped[Profile] = relationship(back_populates="feedback")


# --- subscriptions and deliveries --------------------------------------------------------------


class Subscription(Timestamped, Base):
    """Where, when and how a profile's digest is delivered."""

    __tablename__ = "subscriptions"
    # The papers an inbox already got are looked up by (channel, address): compose.candidate_papers.
    __table_args__ = (Index("ix_subscriptions_channel_address", "channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # email|slack
    address: Mapped[str] = mapped_column(String(500))  # email address, Slack channel id, or webhook name
    secret: Mapped[str | None] = mapped_column(Text)  # encrypted Slack token/webhook URL (Fernet)
    interests: Mapped[list[Any]] = mapped_column(default=list)  # interest names; empty: all
    cadence: Mapped[str] = mapped_column(String(20), default="daily")  # daily|weekdays|weekly
    weekday: Mapped[int | None] = mapped_column(Integer)  # 0=Monday, for weekly
    send_time: Mapped[dt.time] = mapped_column(Time, default=dt.time(8, 0))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    max_papers: Mapped[int] = mapped_column(Integer, default=10)
    min_score: Mapped[float] = mapped_column(Float, default=0.0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="active")  # pending|active|unsubscribed
    needs_attention: Mapped[str | None] = mapped_column(Text)  # permanent channel error
    next_digest_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    # The instance whose pass holds the claim (next_digest_at in the future); freed as soon as it is
    # known dead (service.delivery.recovery).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_sent_at: Mapped[dt.datetime | None] = mapped_column()
    # How the digest reads (service/digest/tldr.py, popularity.py): a one-sentence TL;DR per paper;
    # a popularity boost in the order; weekly only, the week's most upvoted matching papers first.
    tldr: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    trending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    best_of_week: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Feed links signed before this instant answer 410 (the reader reset the link: the old one leaked).
    feed_reset_at: Mapped[dt.datetime | None] = mapped_column()
    # The workspace (and enterprise grid org) of a channel subscribed through the installed Slack app:
    # its bot token comes from that installation, and uninstalling pauses it.
    slack_team_id: Mapped[str | None] = mapped_column(String(32), index=True)
    slack_enterprise_id: Mapped[str | None] = mapped_column(String(32))

    subscriber: Mapped[Subscriber | None] = relationship(back_populates="subscriptions")
    profile: Mapped[Profile] = relationship()


class Delivery(Timestamped, Base):
    """One digest for one subscription and one period: claimed, then sent, then recorded."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # The window start (a subscription's newest delivery) reads only the window's rows.
        Index("ix_deliveries_subscription_id_created_at", "subscription_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(40))  # e.g. 2026-11-23 or 2026-W48
    status: Mapped[str] = mapped_column(String(20), default="claimed")  # claimed|sent|retry|failed|empty
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))  # email Message-ID or Slack ts
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    sent_at: Mapped[dt.datetime | None] = mapped_column()

    subscription: Mapped[Subscription] = relationship()
    papers: Mapped[list[DeliveryPaper]] = relationship(
        back_populates="delivery", cascade="all, delete-orphan", order_by="DeliveryPaper.rank"
    )
    archived_papers: Mapped[list[ArchivedPaper]] = relationship(
        cascade="all, delete-orphan", order_by="ArchivedPaper.rank"
    )


def _paper_seen_at(context: Any) -> dt.datetime | None:
    """The paper's first_seen_at, for an insert that did not give it (one query per row: the
    delivery path passes it)."""
    paper_id = context.get_current_parameters()["paper_id"]
    return context.connection.scalar(select(Paper.first_seen_at).where(Paper.id == paper_id))


class DeliveryPaper(Base):
    """A paper a delivery holds while it can still be a candidate; unique per subscription so a paper
    is never sent twice. service.delivery.retention moves older rows to ArchivedPaper."""

    __tablename__ = "delivery_papers"
    __table_args__ = (
        UniqueConstraint("subscription_id", "paper_id"),
        # The pass reads a subscription's rows inside its window only (index-only on PostgreSQL).
        Index(
            "ix_delivery_papers_subscription_id_paper_seen_at", "subscription_id", "paper_seen_at", "paper_id"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # On PostgreSQL a statement trigger on deliveries replaces this foreign key (migration dbsink_1): the
    # per-row check was most of the claim's database CPU, and rows are only written with their delivery.
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # papers.first_seen_at, copied so the window and the pruning never join papers.
    paper_seen_at: Mapped[dt.datetime] = mapped_column(default=_paper_seen_at, index=True)

    delivery: Mapped[Delivery] = relationship(back_populates="papers")
    paper: Mapped[Paper] = relationship()


class ArchivedPaper(Base):
    """A paper a sent delivery held, moved out of delivery_papers once it can no longer be a
    candidate: what the archive, digest pages, feeds and reader models still show."""

    __tablename__ = "archived_papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[dict[str, Any]] = mapped_column(default=dict)

    paper: Mapped[Paper] = relationship()


class MailEvent(Base):
    """Something that came back about a sent message: a bounce, a complaint, a delivery report, an
    unsubscribe request (or a refused one). Stored once per event_key, so a redelivered report or
    webhook never counts twice."""

    __tablename__ = "mail_events"
    __table_args__ = (Index("ix_mail_events_kind_occurred_at", "kind", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # hard_bounce | soft_bounce | complaint | delivered | unsubscribe | refused
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320), index=True, default="")
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(20))  # dsn|arf|mailbox|ses|postmark|sendgrid|mailgun
    status: Mapped[str | None] = mapped_column(String(20))  # enhanced status code, e.g. 5.1.1
    detail: Mapped[str] = mapped_column(Text, default="")
    raw_ref: Mapped[str] = mapped_column(String(500), default="")  # file, Message-ID or provider event id
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class DispatchNote(Base):
    """What one dispatch pass did with one due subscription, and why ("why no email today");
    `outcome` is one of service.why.OUTCOMES."""

    __tablename__ = "dispatch_notes"
    __table_args__ = (Index("ix_dispatch_notes_subscription_id_at", "subscription_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    pass_at: Mapped[dt.datetime] = mapped_column(index=True)  # when the pass started
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    period: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    papers: Mapped[int] = mapped_column(Integer, default=0)
    best_score: Mapped[float | None] = mapped_column(Float)
    cutoff: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text)
    instance: Mapped[str | None] = mapped_column(String(200))


class Lease(Base):
    """A named lease: which instance runs the scheduler, until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column()


class RateLimitHit(Base):
    """A request counted against a rate limit (web subscribe form), kept briefly."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_bucket_at", "bucket", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(400))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- the Slack app ------------------------------------------------------------------------------


class SlackSeenRequest(Base):
    """A signed Slack request already received, kept while its timestamp could still pass (replays)."""

    __tablename__ = "slack_seen_requests"

    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


def _slack_sdk_tables() -> tuple[Table, Table, Table]:
    # slack_sdk.oauth's own SQLAlchemy stores define these tables; they are built here on paperboy's
    # metadata so that Alembic owns them. Token columns are Text: they hold sealed (encrypted) tokens.
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    store = SQLAlchemyInstallationStore
    installations = store.build_installations_table(Base.metadata, "slack_installations")
    bots = store.build_bots_table(Base.metadata, "slack_bots")
    states = SQLAlchemyOAuthStateStore.build_oauth_states_table(Base.metadata, "slack_oauth_states")
    for table in (installations, bots):
        for column in table.c:
            if column.name.endswith(("_token", "webhook_url")):
                column.type = Text()
    return installations, bots, states


slack_installations, slack_bots, slack_oauth_states = _slack_sdk_tables()
