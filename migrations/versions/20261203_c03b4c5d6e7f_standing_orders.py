"""standing proxy orders (issue 11, item 8)

Adds standing_orders (a villager's regular need the agent set up: villager, point, payment
method, cadence, start date, status), standing_order_lines (its products and quantities) and
standing_order_cycles (one per standing order and due date: prepared by the job, confirmed with
its order, skipped or expired) (domain/standing.py).

Revision ID: c03b4c5d6e7f
Revises: bf2a3b4c5d6e
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "c03b4c5d6e7f"
down_revision: str | None = "bf2a3b4c5d6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = domain.base.UTCDateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "standing_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("villager_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column(
            "payment_method",
            _enum("paymentmethod", "card", "wechat_pay", "alipay", "cash", "credit"),
            nullable=False,
        ),
        sa.Column("cadence", _enum("cadence", "weekly", "monthly"), nullable=False),
        sa.Column("repeat_every", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("status", _enum("standingstatus", "active", "paused", "cancelled"), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "repeat_every BETWEEN 1 AND 12", name=op.f("ck_standing_orders_repeat_every_range")
        ),
        sa.CheckConstraint(
            "(cadence = 'weekly' AND weekday BETWEEN 0 AND 6 AND day_of_month IS NULL)"
            " OR (cadence = 'monthly' AND day_of_month BETWEEN 1 AND 28 AND weekday IS NULL)",
            name=op.f("ck_standing_orders_cadence_day"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_standing_orders_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["point_id"], ["nodes.id"], name=op.f("fk_standing_orders_point_id_nodes")),
        sa.ForeignKeyConstraint(
            ["villager_id"], ["villagers.id"], name=op.f("fk_standing_orders_villager_id_villagers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_orders")),
        sa.UniqueConstraint(
            "created_by_id", "idempotency_key", name=op.f("uq_standing_orders_created_by_id_idempotency_key")
        ),
    )
    op.create_index(op.f("ix_standing_orders_villager_id"), "standing_orders", ["villager_id"], unique=False)
    op.create_index(
        "ix_standing_orders_point_status", "standing_orders", ["point_id", "status"], unique=False
    )
    op.create_table(
        "standing_order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("standing_order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_standing_order_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_standing_order_lines_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["standing_order_id"],
            ["standing_orders.id"],
            name=op.f("fk_standing_order_lines_standing_order_id_standing_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_order_lines")),
        sa.UniqueConstraint(
            "standing_order_id",
            "product_id",
            name=op.f("uq_standing_order_lines_standing_order_id_product_id"),
        ),
    )
    op.create_table(
        "standing_order_cycles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("standing_order_id", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("cutoff_at", UTC_DATETIME, nullable=False),
        sa.Column(
            "status", _enum("cyclestatus", "prepared", "confirmed", "skipped", "expired"), nullable=False
        ),
        sa.Column("order_key", sa.String(length=64), nullable=False),
        sa.Column("placed_by_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("confirm_key", sa.String(length=64), nullable=True),
        sa.Column("skip_reason", sa.String(length=16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_standing_order_cycles_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_standing_order_cycles_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["placed_by_id"], ["users.id"], name=op.f("fk_standing_order_cycles_placed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["standing_order_id"],
            ["standing_orders.id"],
            name=op.f("fk_standing_order_cycles_standing_order_id_standing_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_order_cycles")),
        sa.UniqueConstraint("order_key", name=op.f("uq_standing_order_cycles_order_key")),
        sa.UniqueConstraint(
            "standing_order_id", "due_date", name=op.f("uq_standing_order_cycles_standing_order_id_due_date")
        ),
    )
    op.create_index(
        "ix_standing_order_cycles_status_cutoff",
        "standing_order_cycles",
        ["status", "cutoff_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_standing_order_cycles_status_cutoff", table_name="standing_order_cycles")
    op.drop_table("standing_order_cycles")
    op.drop_table("standing_order_lines")
    op.drop_index("ix_standing_orders_point_status", table_name="standing_orders")
    op.drop_index(op.f("ix_standing_orders_villager_id"), table_name="standing_orders")
    op.drop_table("standing_orders")
