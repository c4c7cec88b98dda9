"""reader_models and interest_vectors: a learned scorer per profile, a sentence vector per interest

Revision ID: learning_1
Revises: 0002
Create Date: 2026-11-29 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "learning_1"
down_revision: str | None = "readers_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reader_models",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_reader_models_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_reader_models")),
    )
    op.create_table(
        "interest_vectors",
        sa.Column("interest_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("text_hash", sa.String(length=32), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interest_id"],
            ["interests.id"],
            name=op.f("fk_interest_vectors_interest_id_interests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interest_id", "model", name=op.f("pk_interest_vectors")),
    )


def downgrade() -> None:
    op.drop_table("interest_vectors")
    op.drop_table("reader_models")
