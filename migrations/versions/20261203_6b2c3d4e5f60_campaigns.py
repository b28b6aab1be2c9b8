"""campaigns (issue 13): campaigns, sellers' sign-ups, what order lines hold of them; each order
line's price breakdown; the subsidy a refund gives back

New tables: campaigns, campaign_items (sign-ups with campaign price, flash-sale quota and per-buyer
limit), campaign_holds (an order line's quota units and subsidy, following its reservation).

order_lines keeps `line_fen = unit_price_fen * quantity` (the list price) and gains the breakdown:
discount_fen, paid_fen (what the buyer paid; existing lines paid their list price), subsidy_fen,
discounted_units and the discounts themselves (JSON). sub_orders gains discount_fen and
subsidy_fen; refunds gains subsidy_fen and units.

Columns are added in place on both databases: on SQLite a batch rebuild of order_lines or
sub_orders would drop the table under the ON DELETE CASCADE of the tables pointing at it. SQLite
therefore goes without the new CHECKs on those two tables (the checkout writes them from one
breakdown); PostgreSQL gets them.

Revision ID: 6b2c3d4e5f60
Revises: 5a1b2c3d4e5f
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "6b2c3d4e5f60"
down_revision: str | None = "5a1b2c3d4e5f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = domain.base.MONEY_TYPE
NEW_COLUMNS = {
    "order_lines": ("discount_fen", "paid_fen", "subsidy_fen", "discounted_units", "discounts"),
    "sub_orders": ("discount_fen", "subsidy_fen"),
    "refunds": ("subsidy_fen", "units"),
}
CHECKS = {
    "order_lines": {
        "paid_adds_up": "paid_fen = line_fen - discount_fen",
        "discount_within_list": "discount_fen >= 0 AND discount_fen <= line_fen",
        "subsidy_within_discount": "subsidy_fen >= 0 AND subsidy_fen <= discount_fen",
        "discounted_units_range": "discounted_units >= 0 AND discounted_units <= quantity",
    },
    "sub_orders": {
        "discount_range": "discount_fen >= 0 AND subsidy_fen >= 0 AND subsidy_fen <= discount_fen"
    },
}


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("banner_key", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum("draft", "published", "cancelled", name="campaignstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("starts_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("county_codes", sa.JSON(), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("certified_only", sa.Boolean(), nullable=False),
        sa.Column("gi_only", sa.Boolean(), nullable=False),
        sa.Column("platform_bps", sa.Integer(), nullable=False),
        sa.Column("price_platform_bps", sa.Integer(), nullable=False),
        sa.Column("budget_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subsidy_used_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("percent_off_bps", sa.Integer(), nullable=True),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column(
            "tier_basis",
            sa.Enum("seller", "campaign", name="tierbasiskind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("first_order_off_fen", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancel_reason", sa.String(length=200), nullable=False),
        sa.Column("closed_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_campaigns_window_order")),
        sa.CheckConstraint(
            "first_order_off_fen IS NULL OR first_order_off_fen > 0",
            name=op.f("ck_campaigns_first_order_positive"),
        ),
        sa.CheckConstraint(
            "percent_off_bps IS NULL OR (percent_off_bps > 0 AND percent_off_bps < 10000)",
            name=op.f("ck_campaigns_percent_off_range"),
        ),
        sa.CheckConstraint(
            "platform_bps >= 0 AND platform_bps <= 10000", name=op.f("ck_campaigns_platform_bps_range")
        ),
        sa.CheckConstraint(
            "price_platform_bps >= 0 AND price_platform_bps <= 10000",
            name=op.f("ck_campaigns_price_platform_bps_range"),
        ),
        sa.CheckConstraint(
            "subsidy_used_fen >= 0 AND subsidy_used_fen <= budget_fen",
            name=op.f("ck_campaigns_within_budget"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_campaigns_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_status_window", ["status", "starts_at", "ends_at"], unique=False)

    op.create_table(
        "campaign_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("campaign_price_fen", sa.Integer(), nullable=True),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.Column("quota_used", sa.Integer(), nullable=False),
        sa.Column("per_buyer_limit", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "withdrawn",
                name="signupstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("signed_up_by_id", sa.Integer(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "campaign_price_fen IS NULL OR campaign_price_fen >= 0",
            name=op.f("ck_campaign_items_price_nonnegative"),
        ),
        sa.CheckConstraint(
            "per_buyer_limit IS NULL OR per_buyer_limit > 0", name=op.f("ck_campaign_items_limit_positive")
        ),
        sa.CheckConstraint("quota IS NULL OR quota > 0", name=op.f("ck_campaign_items_quota_positive")),
        sa.CheckConstraint(
            "quota_used >= 0 AND (quota IS NULL OR quota_used <= quota)",
            name=op.f("ck_campaign_items_within_quota"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_items_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_campaign_items_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_campaign_items_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["seller_id"], ["users.id"], name=op.f("fk_campaign_items_seller_id_users")),
        sa.ForeignKeyConstraint(
            ["signed_up_by_id"], ["users.id"], name=op.f("fk_campaign_items_signed_up_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_items")),
        sa.UniqueConstraint(
            "campaign_id", "product_id", name=op.f("uq_campaign_items_campaign_id_product_id")
        ),
    )
    with op.batch_alter_table("campaign_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_items_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index("ix_campaign_items_product_status", ["product_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_items_seller_id"), ["seller_id"], unique=False)

    op.create_table(
        "campaign_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("subsidy_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("returned_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "status",
            sa.Enum("held", "committed", "released", name="reservationstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "returned_fen >= 0 AND returned_fen <= subsidy_fen",
            name=op.f("ck_campaign_holds_returned_within"),
        ),
        sa.CheckConstraint(
            "units >= 0 AND subsidy_fen >= 0", name=op.f("ck_campaign_holds_amounts_nonnegative")
        ),
        sa.ForeignKeyConstraint(["buyer_id"], ["users.id"], name=op.f("fk_campaign_holds_buyer_id_users")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_holds_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["campaign_items.id"], name=op.f("fk_campaign_holds_item_id_campaign_items")
        ),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["order_lines.id"],
            name=op.f("fk_campaign_holds_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_campaign_holds_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sub_order_id"],
            ["sub_orders.id"],
            name=op.f("fk_campaign_holds_sub_order_id_sub_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_holds")),
        sa.UniqueConstraint("line_id", "campaign_id", name=op.f("uq_campaign_holds_line_id_campaign_id")),
    )
    with op.batch_alter_table("campaign_holds", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_holds_campaign_status", ["campaign_id", "status"], unique=False)
        batch_op.create_index("ix_campaign_holds_item_buyer", ["item_id", "buyer_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_holds_order_id"), ["order_id"], unique=False)

    op.add_column("order_lines", sa.Column("discount_fen", MONEY, nullable=False, server_default="0"))
    op.add_column("order_lines", sa.Column("paid_fen", MONEY, nullable=False, server_default="0"))
    op.add_column("order_lines", sa.Column("subsidy_fen", MONEY, nullable=False, server_default="0"))
    op.add_column(
        "order_lines", sa.Column("discounted_units", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("order_lines", sa.Column("discounts", sa.JSON(), nullable=False, server_default="[]"))
    op.execute("UPDATE order_lines SET paid_fen = line_fen")  # every line so far paid its list price
    op.add_column("sub_orders", sa.Column("discount_fen", MONEY, nullable=False, server_default="0"))
    op.add_column("sub_orders", sa.Column("subsidy_fen", MONEY, nullable=False, server_default="0"))
    op.add_column("refunds", sa.Column("subsidy_fen", MONEY, nullable=False, server_default="0"))
    op.add_column("refunds", sa.Column("units", sa.JSON(), nullable=False, server_default="{}"))
    if op.get_bind().dialect.name != "sqlite":
        for table, checks in CHECKS.items():
            for name, condition in checks.items():
                op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, checks in CHECKS.items():
            for name in checks:
                op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    with op.batch_alter_table("campaign_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_holds_order_id"))
        batch_op.drop_index("ix_campaign_holds_item_buyer")
        batch_op.drop_index("ix_campaign_holds_campaign_status")

    op.drop_table("campaign_holds")
    with op.batch_alter_table("campaign_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_items_seller_id"))
        batch_op.drop_index("ix_campaign_items_product_status")
        batch_op.drop_index(batch_op.f("ix_campaign_items_campaign_id"))

    op.drop_table("campaign_items")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_status_window")

    op.drop_table("campaigns")
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            op.drop_column(table, column)
