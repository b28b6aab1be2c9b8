"""partial refunds keep moving; captures for less (issue 10, items 1 and 3)

A partial refund is money, not a fulfilment state: sub-orders left in `partially_refunded` go
back to the fulfilment state they were in when the refund was asked for (from their events),
so they can be delivered, completed and paid out. `sub_orders.released_fen` records the part of
a pre-sale authorisation that was not captured (captured for less).

Revision ID: 1b2c3d4e5f6a
Revises: 0a1b2c3d4e5f
Create Date: 2026-12-03 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "1b2c3d4e5f6a"
down_revision: str | None = "0a1b2c3d4e5f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETURNABLE = (
    "paid",
    "accepted",
    "handed_in",
    "in_transit",
    "ready_for_pickup",
    "out_for_delivery",
    "completed",
)


def upgrade() -> None:
    # ADD COLUMN in place on both databases: on SQLite a batch rebuild of sub_orders would drop
    # the table under order_events' ON DELETE CASCADE. SQLite keeps the server default and goes
    # without the CHECK (the services keep released_fen + refunded_fen within the total).
    op.add_column(
        "sub_orders", sa.Column("released_fen", domain.base.MONEY_TYPE, nullable=False, server_default="0")
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("sub_orders", "released_fen", server_default=None)
        op.create_check_constraint(
            op.f("ck_sub_orders_released_within_total"),
            "sub_orders",
            "released_fen >= 0 AND released_fen + refunded_fen <= total_fen",
        )

    conn = op.get_bind()
    stuck = conn.execute(
        sa.text("SELECT id, completed_at FROM sub_orders WHERE status = 'partially_refunded'")
    ).all()
    for sub_id, completed_at in stuck:
        before = conn.execute(
            sa.text(
                "SELECT from_status FROM order_events WHERE sub_order_id = :id"
                " AND to_status = 'refund_requested' AND from_status IN :returnable"
                " ORDER BY id DESC LIMIT 1"
            ).bindparams(sa.bindparam("returnable", expanding=True)),
            {"id": sub_id, "returnable": list(RETURNABLE)},
        ).scalar()
        status = before or ("completed" if completed_at is not None else "paid")
        conn.execute(
            sa.text(
                "INSERT INTO order_events (sub_order_id, from_status, to_status, note, details, created_at)"
                " VALUES (:id, 'partially_refunded', :status, '', '{}', CURRENT_TIMESTAMP)"
            ),
            {"id": sub_id, "status": status},
        )
        conn.execute(
            sa.text("UPDATE sub_orders SET status = :status WHERE id = :id"), {"id": sub_id, "status": status}
        )


def downgrade() -> None:
    # Partly refunded sub-orders stay in their fulfilment state: the old table could not move them on.
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_sub_orders_released_within_total"), "sub_orders", type_="check")
    op.drop_column("sub_orders", "released_fen")
