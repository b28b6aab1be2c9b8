"""agents' commissions by category rates (issue 11, item 6)

Adds commission_rates (a county's rate per kind of work and category, in basis points),
agent_commissions (what an agent earned on a sub-order, and what refunds took back) and
commission_payouts (an agent's line in a payout batch), domain/commissions.py.

Revision ID: bf2a3b4c5d6e
Revises: ae1f2a3b4c5d
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "bf2a3b4c5d6e"
down_revision: str | None = "ae1f2a3b4c5d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KIND = sa.Enum("proxy", "intake", name="commissionkind", native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "commission_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rate_bp >= 0 AND rate_bp <= 3000", name=op.f("ck_commission_rates_rate_in_range")),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_commission_rates_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["county_code"], ["divisions.code"], name=op.f("fk_commission_rates_county_code_divisions")
        ),
        sa.ForeignKeyConstraint(["set_by_id"], ["users.id"], name=op.f("fk_commission_rates_set_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_rates")),
    )
    op.create_index(
        "uq_commission_rates_category",
        "commission_rates",
        ["county_code", "kind", "category_id"],
        unique=True,
        sqlite_where=sa.text("category_id IS NOT NULL"),
        postgresql_where=sa.text("category_id IS NOT NULL"),
    )
    op.create_index(
        "uq_commission_rates_county",
        "commission_rates",
        ["county_code", "kind"],
        unique=True,
        sqlite_where=sa.text("category_id IS NULL"),
        postgresql_where=sa.text("category_id IS NULL"),
    )
    op.create_table(
        "commission_payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("gross_fen", MONEY, nullable=False),
        sa.Column("netted_fen", MONEY, nullable=False),
        sa.Column("amount_fen", MONEY, nullable=False),
        sa.Column("commission_count", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_commission_payouts_amount_nonnegative")),
        sa.CheckConstraint("netted_fen >= 0", name=op.f("ck_commission_payouts_netted_nonnegative")),
        sa.CheckConstraint(
            "gross_fen = amount_fen + netted_fen", name=op.f("ck_commission_payouts_gross_adds_up")
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_commission_payouts_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["payout_batches.id"],
            name=op.f("fk_commission_payouts_batch_id_payout_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_payouts")),
    )
    op.create_index(op.f("ix_commission_payouts_agent_id"), "commission_payouts", ["agent_id"], unique=False)
    op.create_index(op.f("ix_commission_payouts_batch_id"), "commission_payouts", ["batch_id"], unique=False)
    op.create_table(
        "agent_commissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("base_fen", MONEY, nullable=False),
        sa.Column("amount_fen", MONEY, nullable=False),
        sa.Column("reversed_fen", MONEY, nullable=False),
        sa.Column("earned_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_agent_commissions_amount_positive")),
        sa.CheckConstraint(
            "reversed_fen >= 0 AND reversed_fen <= amount_fen", name=op.f("ck_agent_commissions_reversed_in_range")
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_agent_commissions_agent_id_users")),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_agent_commissions_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["commission_payouts.id"],
            name=op.f("fk_agent_commissions_payout_id_commission_payouts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sub_order_id"], ["sub_orders.id"], name=op.f("fk_agent_commissions_sub_order_id_sub_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_commissions")),
        sa.UniqueConstraint("sub_order_id", "kind", name=op.f("uq_agent_commissions_sub_order_id_kind")),
    )
    op.create_index(
        "ix_agent_commissions_agent_earned", "agent_commissions", ["agent_id", "earned_at"], unique=False
    )
    op.create_index(op.f("ix_agent_commissions_payout_id"), "agent_commissions", ["payout_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_commissions_payout_id"), table_name="agent_commissions")
    op.drop_index("ix_agent_commissions_agent_earned", table_name="agent_commissions")
    op.drop_table("agent_commissions")
    op.drop_index(op.f("ix_commission_payouts_batch_id"), table_name="commission_payouts")
    op.drop_index(op.f("ix_commission_payouts_agent_id"), table_name="commission_payouts")
    op.drop_table("commission_payouts")
    op.drop_index("uq_commission_rates_county", table_name="commission_rates")
    op.drop_index("uq_commission_rates_category", table_name="commission_rates")
    op.drop_table("commission_rates")
