"""mail_events: bounces, complaints, delivery reports and unsubscribe mail that came back

Revision ID: mail_1
Revises: 0002
Create Date: 2026-11-29 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mail_1"
down_revision: str | None = "slackapp_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw_ref", sa.String(length=500), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_mail_events_delivery_id_deliveries"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_mail_events_subscription_id_subscriptions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_mail_events_event_key")),
    )
    with op.batch_alter_table("mail_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_events_address"), ["address"], unique=False)
        batch_op.create_index("ix_mail_events_kind_occurred_at", ["kind", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_events", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_events_kind_occurred_at")
        batch_op.drop_index(batch_op.f("ix_mail_events_address"))
    op.drop_table("mail_events")
