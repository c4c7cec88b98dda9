"""subscriptions.claimed_by (crash recovery) and the (channel, address) index of the pool path

Revision ID: scale_1
Revises: learning_1
Create Date: 2026-11-29 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "scale_1"
down_revision: str | None = "learning_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("claimed_by", sa.String(length=200), nullable=True))
    op.create_index("ix_subscriptions_channel_address", "subscriptions", ["channel", "address"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_channel_address", table_name="subscriptions")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("claimed_by")
