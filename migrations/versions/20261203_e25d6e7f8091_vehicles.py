"""vehicles, and the vehicle carrying a leg (issue 12, items 5-7)

Adds vehicles (based at a county center or a distribution center: plate, ambient or
refrigerated, capacity in kg and litres, shift) and legs.vehicle_id (the vehicle that carries the
leg, set by the day's route plan or the departure scan) (domain/logistics.py).

Revision ID: e25d6e7f8091
Revises: d14c5d6e7f80
Create Date: 2026-12-03 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "e25d6e7f8091"
down_revision: str | None = "d14c5d6e7f80"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("ambient", "refrigerated", name="vehiclekind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("capacity_kg", sa.Integer(), nullable=False),
        sa.Column("capacity_l", sa.Integer(), nullable=False),
        sa.Column("shift_start", sa.Time(), nullable=False),
        sa.Column("shift_end", sa.Time(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity_kg > 0", name=op.f("ck_vehicles_capacity_kg_positive")),
        sa.CheckConstraint("capacity_l > 0", name=op.f("ck_vehicles_capacity_l_positive")),
        sa.CheckConstraint("shift_start < shift_end", name=op.f("ck_vehicles_shift_order")),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_vehicles_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("plate", name=op.f("uq_vehicles_plate")),
    )
    op.create_index(op.f("ix_vehicles_node_id"), "vehicles", ["node_id"], unique=False)
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vehicle_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_legs_vehicle_id"), ["vehicle_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_legs_vehicle_id_vehicles"), "vehicles", ["vehicle_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_legs_vehicle_id_vehicles"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_legs_vehicle_id"))
        batch_op.drop_column("vehicle_id")
    op.drop_index(op.f("ix_vehicles_node_id"), table_name="vehicles")
    op.drop_table("vehicles")
