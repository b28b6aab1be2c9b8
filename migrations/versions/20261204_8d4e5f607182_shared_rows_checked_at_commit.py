"""Foreign keys from a checkout's rows to rows many checkouts share, checked at commit.

order_lines.product_id and stock_reservations.product_id (the product), sub_orders.seller_id
(its seller), orders.division_code and orders.pickup_node_id (the delivery's division or pickup
point), campaign_holds.campaign_id and campaign_holds.item_id (a campaign and its sign-up) become
DEFERRABLE INITIALLY DEFERRED on PostgreSQL (domain.base.shared_row says why: checked at each
INSERT, every checkout in flight held a KEY SHARE lock on the shared row, kept as a MultiXact
rewritten for each new one). ALTER CONSTRAINT changes only the constraint's timing: no table is
rewritten or scanned.

SQLite keeps them as they were: it has no row locks, and rebuilding orders, sub_orders or
order_lines (the only way to change a constraint there) with foreign keys on would delete their
children through ON DELETE CASCADE.

Revision ID: 8d4e5f607182
Revises: 7c3d4e5f6071
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision: str = "8d4e5f607182"
down_revision: str | None = "7c3d4e5f6071"
branch_labels = None
depends_on = None

SHARED = (
    ("orders", "fk_orders_division_code_divisions"),
    ("orders", "fk_orders_pickup_node_id_nodes"),
    ("sub_orders", "fk_sub_orders_seller_id_users"),
    ("order_lines", "fk_order_lines_product_id_products"),
    ("stock_reservations", "fk_stock_reservations_product_id_products"),
    ("campaign_holds", "fk_campaign_holds_campaign_id_campaigns"),
    ("campaign_holds", "fk_campaign_holds_item_id_campaign_items"),
)


def _alter(timing: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, constraint in SHARED:
        op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {constraint} {timing}")


def upgrade() -> None:
    _alter("DEFERRABLE INITIALLY DEFERRED")


def downgrade() -> None:
    _alter("NOT DEFERRABLE INITIALLY IMMEDIATE")
