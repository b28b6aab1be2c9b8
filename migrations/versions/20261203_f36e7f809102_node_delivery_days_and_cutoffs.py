"""node delivery days, order cut-off and ready time (issue 12, item 3)

Adds nodes.delivery_days (ISO weekday digits, "1234567" every day), nodes.cutoff_time (orders
by then go with the next delivery day's run, 22:00) and nodes.ready_time (parcels can be
collected from then on a delivery day, 14:00) (domain/places.py; services/logistics/schedule.py).
Existing nodes get the defaults: served every day, order by 22:00, collect from 14:00.

Revision ID: f36e7f809102
Revises: 3d7a2b3c4d56
Create Date: 2026-12-03 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f36e7f809102"
# The vehicles migration (e25d6e7f8091) is being added on another branch; until it lands here
# this follows the shipments migration.
down_revision: str | None = "3d7a2b3c4d56"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery_days", sa.String(length=7), server_default="1234567", nullable=False)
        )
        batch_op.add_column(sa.Column("cutoff_time", sa.Time(), server_default="22:00:00", nullable=False))
        batch_op.add_column(sa.Column("ready_time", sa.Time(), server_default="14:00:00", nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_nodes_delivery_days_given"), "length(delivery_days) BETWEEN 1 AND 7"
        )


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_nodes_delivery_days_given"), type_="check")
        batch_op.drop_column("ready_time")
        batch_op.drop_column("cutoff_time")
        batch_op.drop_column("delivery_days")
