"""What readers ask for: followed authors, consent source, digest options, dispatch notes, feeds

Revision ID: readers_1
Revises: mail_1
Create Date: 2026-11-29 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "readers_1"
down_revision: str | None = "mail_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authors", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_source", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        for name in ("tldr", "trending", "best_of_week"):
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("feed_reset_at", sa.DateTime(timezone=True), nullable=True))


    op.create_table(
        "dispatch_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("pass_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("papers", sa.Integer(), nullable=False),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("cutoff", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("instance", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_dispatch_notes_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_notes")),
    )
    op.create_index(op.f("ix_dispatch_notes_pass_at"), "dispatch_notes", ["pass_at"], unique=False)
    op.create_index(
        "ix_dispatch_notes_subscription_id_at", "dispatch_notes", ["subscription_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dispatch_notes_subscription_id_at", table_name="dispatch_notes")
    op.drop_index(op.f("ix_dispatch_notes_pass_at"), table_name="dispatch_notes")
    op.drop_table("dispatch_notes")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("feed_reset_at")
        for name in ("best_of_week", "trending", "tldr"):
            batch_op.drop_column(name)
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("consent_at")
        batch_op.drop_column("consent_source")
    with op.batch_alter_table("interests", schema=None) as batch_op:
        batch_op.drop_column("authors")
