"""delivery_papers.paper_seen_at and its window index, archived_papers, and the deliveries index of
the window start: the pass reads what the window needs, and old rows move out of the hot table

Revision ID: scaletables_1
Revises: security_1
Create Date: 2026-11-29 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "scaletables_1"
down_revision: str | None = "security_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# papers.first_seen_at never moves in paperboy's own code, but a paper whose first_seen_at is moved
# (by hand, or a future ingest rule) into a later window must still count as held: its
# delivery_papers rows follow it, and archived rows of it come back to delivery_papers.
_FOLLOW = (
    "UPDATE delivery_papers SET paper_seen_at = NEW.first_seen_at WHERE paper_id = NEW.id;"
    " INSERT INTO delivery_papers (delivery_id, subscription_id, paper_id, rank, score, reason, paper_seen_at)"
    " SELECT delivery_id, subscription_id, paper_id, rank, score, reason, NEW.first_seen_at"
    " FROM archived_papers WHERE paper_id = NEW.id;"
    " DELETE FROM archived_papers WHERE paper_id = NEW.id;"
)
_SQLITE_TRIGGER = (
    "CREATE TRIGGER papers_first_seen_at_moved AFTER UPDATE OF first_seen_at ON papers FOR EACH ROW"
    f" WHEN OLD.first_seen_at IS NOT NEW.first_seen_at BEGIN {_FOLLOW} END"
)
_PG_FUNCTION = (
    "CREATE FUNCTION delivery_papers_follow_first_seen_at() RETURNS trigger LANGUAGE plpgsql AS"
    f" $$ BEGIN {_FOLLOW} RETURN NULL; END $$"
)
_PG_TRIGGER = (
    "CREATE TRIGGER papers_first_seen_at_moved AFTER UPDATE OF first_seen_at ON papers FOR EACH ROW"
    " WHEN (OLD.first_seen_at IS DISTINCT FROM NEW.first_seen_at)"
    " EXECUTE FUNCTION delivery_papers_follow_first_seen_at()"
)


def upgrade() -> None:
    op.add_column("delivery_papers", sa.Column("paper_seen_at", sa.DateTime(timezone=True), nullable=True))
    # Backfill: every existing row gets its paper's first_seen_at (the foreign key guarantees one).
    op.execute(
        "UPDATE delivery_papers SET paper_seen_at = "
        "(SELECT papers.first_seen_at FROM papers WHERE papers.id = delivery_papers.paper_id)"
    )
    with op.batch_alter_table("delivery_papers") as batch:
        batch.alter_column("paper_seen_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_delivery_papers_paper_seen_at", "delivery_papers", ["paper_seen_at"])
    op.create_index(
        "ix_delivery_papers_subscription_id_paper_seen_at",
        "delivery_papers",
        ["subscription_id", "paper_seen_at", "paper_id"],
    )
    op.create_index(
        "ix_deliveries_subscription_id_created_at", "deliveries", ["subscription_id", "created_at"]
    )
    op.create_table(
        "archived_papers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_archived_papers_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name=op.f("fk_archived_papers_paper_id_papers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_archived_papers_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_papers")),
    )
    op.create_index("ix_archived_papers_delivery_id", "archived_papers", ["delivery_id"])
    op.create_index("ix_archived_papers_subscription_id", "archived_papers", ["subscription_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS papers_first_seen_at_moved"
        + (" ON papers" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS delivery_papers_follow_first_seen_at()")
    # Archived rows go back to delivery_papers first: downgrading loses nothing a reader saw.
    op.execute(
        "INSERT INTO delivery_papers"
        " (delivery_id, subscription_id, paper_id, rank, score, reason, paper_seen_at) "
        "SELECT a.delivery_id, a.subscription_id, a.paper_id, a.rank, a.score, a.reason, p.first_seen_at "
        "FROM archived_papers a JOIN papers p ON p.id = a.paper_id"
    )
    op.drop_index("ix_archived_papers_subscription_id", table_name="archived_papers")
    op.drop_index("ix_archived_papers_delivery_id", table_name="archived_papers")
    op.drop_table("archived_papers")
    op.drop_index("ix_deliveries_subscription_id_created_at", table_name="deliveries")
    op.drop_index("ix_delivery_papers_subscription_id_paper_seen_at", table_name="delivery_papers")
    op.drop_index("ix_delivery_papers_paper_seen_at", table_name="delivery_papers")
    with op.batch_alter_table("delivery_papers") as batch:
        batch.drop_column("paper_seen_at")
