"""parcels handed over at the village point (issue 11, item 4)

Adds parcel_handovers: how each parcel (sub-order) waiting at a pickup point left it, collected
with the pickup code, handed over for a recorded reason when the code was lost, or returned
when nobody collected it in time (domain/parcels.py).

Revision ID: 9d0e1f2a3b4c
Revises: 8c9d0e1f2a3b
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "9d0e1f2a3b4c"
down_revision: str | None = "8c9d0e1f2a3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "parcel_handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("handed_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "method",
            sa.Enum("code", "reason", "returned", name="handovermethod", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "id_card",
                "known_villager",
                "family_member",
                name="identityreason",
                native_enum=False,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("reason_text", sa.String(length=200), nullable=False),
        sa.Column("collected_by", sa.String(length=40), nullable=False),
        sa.Column("cash_collected_fen", MONEY, nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["handed_by_id"], ["users.id"], name=op.f("fk_parcel_handovers_handed_by_id_users")
        ),
        sa.ForeignKeyConstraint(["point_id"], ["nodes.id"], name=op.f("fk_parcel_handovers_point_id_nodes")),
        sa.ForeignKeyConstraint(
            ["sub_order_id"], ["sub_orders.id"], name=op.f("fk_parcel_handovers_sub_order_id_sub_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel_handovers")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_parcel_handovers_idempotency_key")),
        sa.UniqueConstraint("sub_order_id", name=op.f("uq_parcel_handovers_sub_order_id")),
    )
    op.create_index(
        "ix_parcel_handovers_point_created", "parcel_handovers", ["point_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_parcel_handovers_point_created", table_name="parcel_handovers")
    op.drop_table("parcel_handovers")
