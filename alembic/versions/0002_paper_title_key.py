"""papers.title_key: find a paper again by its normalised title

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_key", sa.String(length=300), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_papers_title_key"), ["title_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_papers_title_key"))
        batch_op.drop_column("title_key")
