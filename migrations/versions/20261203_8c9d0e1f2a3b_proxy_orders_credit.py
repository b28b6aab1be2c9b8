"""proxy orders for villagers and the agents' credit (issue 11, item 3)

Adds orders.villager_id (a proxy order's buyer of record), agent_credit_limits (set by county
staff), credit_collections (a villager paid at pickup for a sub-order placed on the agent's
credit) and proxy_cart_items (an agent's cart for one villager). The new payment method
"credit" and payment status "on_credit" fit the existing string columns (no native enums).

Revision ID: 8c9d0e1f2a3b
Revises: 7b8c9d0e1f2a
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "8c9d0e1f2a3b"
down_revision: str | None = "7b8c9d0e1f2a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("villager_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_villager_id"), ["villager_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_villager_id_villagers"), "villagers", ["villager_id"], ["id"]
        )

    op.create_table(
        "agent_credit_limits",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("limit_fen", MONEY, nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("limit_fen >= 0", name=op.f("ck_agent_credit_limits_limit_nonnegative")),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_agent_credit_limits_agent_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["users.id"], name=op.f("fk_agent_credit_limits_set_by_id_users")
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_credit_limits")),
    )

    op.create_table(
        "credit_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("credit_agent_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", MONEY, nullable=False),
        sa.Column("collected_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_credit_collections_amount_positive")),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_credit_collections_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["credit_agent_id"], ["users.id"], name=op.f("fk_credit_collections_credit_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_credit_collections_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sub_order_id"],
            ["sub_orders.id"],
            name=op.f("fk_credit_collections_sub_order_id_sub_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_collections")),
        sa.UniqueConstraint("sub_order_id", name=op.f("uq_credit_collections_sub_order_id")),
    )
    op.create_index(op.f("ix_credit_collections_order_id"), "credit_collections", ["order_id"], unique=False)
    op.create_index(
        op.f("ix_credit_collections_credit_agent_id"), "credit_collections", ["credit_agent_id"], unique=False
    )
    op.create_index(op.f("ix_credit_collections_agent_id"), "credit_collections", ["agent_id"], unique=False)

    op.create_table(
        "proxy_cart_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("villager_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_proxy_cart_items_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_proxy_cart_items_agent_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_proxy_cart_items_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["villager_id"],
            ["villagers.id"],
            name=op.f("fk_proxy_cart_items_villager_id_villagers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_cart_items")),
        sa.UniqueConstraint(
            "agent_id",
            "villager_id",
            "product_id",
            name=op.f("uq_proxy_cart_items_agent_id_villager_id_product_id"),
        ),
    )
    op.create_index(op.f("ix_proxy_cart_items_agent_id"), "proxy_cart_items", ["agent_id"], unique=False)
    op.create_index(
        op.f("ix_proxy_cart_items_villager_id"), "proxy_cart_items", ["villager_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_proxy_cart_items_villager_id"), table_name="proxy_cart_items")
    op.drop_index(op.f("ix_proxy_cart_items_agent_id"), table_name="proxy_cart_items")
    op.drop_table("proxy_cart_items")
    op.drop_index(op.f("ix_credit_collections_agent_id"), table_name="credit_collections")
    op.drop_index(op.f("ix_credit_collections_credit_agent_id"), table_name="credit_collections")
    op.drop_index(op.f("ix_credit_collections_order_id"), table_name="credit_collections")
    op.drop_table("credit_collections")
    op.drop_table("agent_credit_limits")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_orders_villager_id_villagers"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_orders_villager_id"))
        batch_op.drop_column("villager_id")
