"""What readers ask for: followed authors, consent source of imported subscribers

Revision ID: readers_1
Revises: 0002
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


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("consent_at")
        batch_op.drop_column("consent_source")
    with op.batch_alter_table("interests", schema=None) as batch_op:
        batch_op.drop_column("authors")
