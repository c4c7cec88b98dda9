"""PostgreSQL: delivery_papers follow their deleted deliveries by a statement trigger, not a foreign key

The foreign key delivery_papers.delivery_id -> deliveries checked every inserted row (a locking
lookup of the delivery the same transaction had just inserted): two thirds of the database's CPU for
a claimed chunk's papers (bench/deliver_bench.py). Rows are only ever written in the transaction that
inserted their delivery (or moved back from archived_papers, whose own foreign key keeps them
valid), so the check never refused anything; what the key gave besides, ON DELETE CASCADE, a
statement-level AFTER DELETE trigger on deliveries keeps, for every way a delivery is deleted
(directly, or cascaded from its subscription). SQLite keeps its foreign key: nothing changes there.

Revision ID: dbsink_1
Revises: scaletables_1
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "dbsink_1"
down_revision: str | None = "scaletables_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_delivery_papers_delivery_id_deliveries"
_FUNCTION = (
    "CREATE FUNCTION delivery_papers_follow_deleted_deliveries() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN DELETE FROM delivery_papers WHERE delivery_id IN (SELECT id FROM gone); RETURN NULL; END $$"
)
_TRIGGER = (
    "CREATE TRIGGER deliveries_deleted AFTER DELETE ON deliveries REFERENCING OLD TABLE AS gone"
    " FOR EACH STATEMENT EXECUTE FUNCTION delivery_papers_follow_deleted_deliveries()"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)
    op.drop_constraint(FOREIGN_KEY, "delivery_papers", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DELETE FROM delivery_papers WHERE delivery_id NOT IN (SELECT id FROM deliveries)")
    op.create_foreign_key(
        FOREIGN_KEY, "delivery_papers", "deliveries", ["delivery_id"], ["id"], ondelete="CASCADE"
    )
    op.execute("DROP TRIGGER deliveries_deleted ON deliveries")
    op.execute("DROP FUNCTION delivery_papers_follow_deleted_deliveries()")
