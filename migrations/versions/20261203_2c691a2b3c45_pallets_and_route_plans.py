"""pallets and route plans (issue 12, items 5-6)

Adds pallets and the parcels on them (one row per leg: a leg is on at most one pallet), and the
day's route plan of a county center or a distribution center: its vehicles' runs and its stops,
planned in order on a vehicle or unplanned with a reason, with the locks staff set
(domain/routing.py).

Revision ID: 2c691a2b3c45
Revises: f36e7f809102
Create Date: 2026-12-03 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "2c691a2b3c45"
down_revision: str | None = "f36e7f809102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pallets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("next_node_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "storage_class",
            sa.Enum("ambient", "chilled", "frozen", name="storageclass", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("built", "loaded", "departed", name="palletstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("weight_g", sa.Integer(), nullable=False),
        sa.Column("volume_l", sa.Integer(), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("volume_l >= 0", name=op.f("ck_pallets_volume_nonnegative")),
        sa.CheckConstraint("weight_g >= 0", name=op.f("ck_pallets_weight_nonnegative")),
        sa.ForeignKeyConstraint(["next_node_id"], ["nodes.id"], name=op.f("fk_pallets_next_node_id_nodes")),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_pallets_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pallets")),
        sa.UniqueConstraint("code", name=op.f("uq_pallets_code")),
    )
    with op.batch_alter_table("pallets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pallets_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_pallets_node_id"), ["node_id"], unique=False)

    op.create_table(
        "route_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("solver", sa.String(length=32), nullable=False),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("solve_ms", sa.Integer(), nullable=False),
        sa.Column("planned_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("planned_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_route_plans_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["planned_by_id"], ["users.id"], name=op.f("fk_route_plans_planned_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_plans")),
        sa.UniqueConstraint("node_id", "day", name=op.f("uq_route_plans_node_id_day")),
    )
    with op.batch_alter_table("route_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_plans_node_id"), ["node_id"], unique=False)

    op.create_table(
        "route_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("depart_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("return_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("load_out_g", sa.Integer(), nullable=False),
        sa.Column("load_out_cm3", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["route_plans.id"],
            name=op.f("fk_route_runs_plan_id_route_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_route_runs_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_runs")),
        sa.UniqueConstraint("plan_id", "vehicle_id", name=op.f("uq_route_runs_plan_id_vehicle_id")),
    )
    with op.batch_alter_table("route_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_runs_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_route_runs_vehicle_id"), ["vehicle_id"], unique=False)

    op.create_table(
        "route_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("locked_vehicle_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("arrive_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("depart_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("drop_g", sa.Integer(), nullable=False),
        sa.Column("drop_l", sa.Integer(), nullable=False),
        sa.Column("pickup_g", sa.Integer(), nullable=False),
        sa.Column("pickup_l", sa.Integer(), nullable=False),
        sa.Column("drop_parcels", sa.Integer(), nullable=False),
        sa.Column("pickup_parcels", sa.Integer(), nullable=False),
        sa.Column("load_g", sa.Integer(), nullable=False),
        sa.Column("load_cm3", sa.Integer(), nullable=False),
        sa.Column("cold", sa.Boolean(), nullable=False),
        sa.Column("hours", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["locked_vehicle_id"], ["vehicles.id"], name=op.f("fk_route_stops_locked_vehicle_id_vehicles")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_route_stops_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["route_plans.id"],
            name=op.f("fk_route_stops_plan_id_route_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_route_stops_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_stops")),
        sa.UniqueConstraint("plan_id", "node_id", name=op.f("uq_route_stops_plan_id_node_id")),
    )
    with op.batch_alter_table("route_stops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_stops_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "pallet_parcels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pallet_id", sa.Integer(), nullable=False),
        sa.Column("leg_id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("weight_g", sa.Integer(), nullable=False),
        sa.Column("volume_l", sa.Integer(), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["leg_id"], ["legs.id"], name=op.f("fk_pallet_parcels_leg_id_legs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["pallet_id"],
            ["pallets.id"],
            name=op.f("fk_pallet_parcels_pallet_id_pallets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_pallet_parcels_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pallet_parcels")),
        sa.UniqueConstraint("leg_id", name=op.f("uq_pallet_parcels_leg_id")),
    )
    with op.batch_alter_table("pallet_parcels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pallet_parcels_pallet_id"), ["pallet_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pallet_parcels_shipment_id"), ["shipment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pallet_parcels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pallet_parcels_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_pallet_parcels_pallet_id"))

    op.drop_table("pallet_parcels")
    with op.batch_alter_table("route_stops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_stops_plan_id"))

    op.drop_table("route_stops")
    with op.batch_alter_table("route_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_runs_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_route_runs_plan_id"))

    op.drop_table("route_runs")
    with op.batch_alter_table("route_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_plans_node_id"))

    op.drop_table("route_plans")
    with op.batch_alter_table("pallets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pallets_node_id"))
        batch_op.drop_index(batch_op.f("ix_pallets_day"))

    op.drop_table("pallets")
