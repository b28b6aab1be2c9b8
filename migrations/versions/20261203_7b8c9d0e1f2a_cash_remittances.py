"""cash proxy orders and cash remittance (issue 11, items 3 and 6)

Adds cash_remittances: an agent's collected cash handed in to the county service center,
declared by the agent and counted and confirmed by county staff (domain/cash.py).

Revision ID: 7b8c9d0e1f2a
Revises: 6a7b8c9d0e1f
Create Date: 2026-12-03 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "7b8c9d0e1f2a"
down_revision: str | None = "6a7b8c9d0e1f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cash_remittances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("declared_fen", MONEY, nullable=False),
        sa.Column("counted_fen", MONEY, nullable=True),
        sa.Column(
            "status",
            sa.Enum("declared", "confirmed", name="remittancestatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("declared_fen > 0", name=op.f("ck_cash_remittances_declared_positive")),
        sa.CheckConstraint(
            "counted_fen IS NULL OR counted_fen >= 0", name=op.f("ck_cash_remittances_counted_nonnegative")
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_cash_remittances_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"], ["users.id"], name=op.f("fk_cash_remittances_confirmed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["county_code"], ["divisions.code"], name=op.f("fk_cash_remittances_county_code_divisions")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_cash_remittances_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_remittances")),
        sa.UniqueConstraint(
            "agent_id", "idempotency_key", name=op.f("uq_cash_remittances_agent_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_cash_remittances_county_status", "cash_remittances", ["county_code", "status"], unique=False
    )
    op.create_index(
        "ix_cash_remittances_agent_created", "cash_remittances", ["agent_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_cash_remittances_agent_created", table_name="cash_remittances")
    op.drop_index("ix_cash_remittances_county_status", table_name="cash_remittances")
    op.drop_table("cash_remittances")
