"""shipments, their legs and scans (issue 12, items 1-2)

Adds shipments (one per sub-order, made at its intake: flow, origin and destination nodes, state,
where it is now, ETA), legs (the hops between consecutive nodes in order, planned and actual
times; a last leg with no to_node ends at the buyer's door; reverse legs for a return) and scans
(the hand-over events that move them, idempotent by key), and sub_orders.delivered_at (the
completion timer starts at a delivered scan) (domain/logistics.py).

Revision ID: d14c5d6e7f80
Revises: c03b4c5d6e7f
Create Date: 2026-12-03 13:27:38.264975
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "d14c5d6e7f80"
down_revision: str | None = "c03b4c5d6e7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column(
            "flow",
            sa.Enum("first_km", "last_km", "other", name="flow", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "at_origin",
                "moving",
                "at_node",
                "ready",
                "out_for_delivery",
                "delivered",
                "returning",
                "returned",
                name="shipmentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("origin_node_id", sa.Integer(), nullable=False),
        sa.Column("destination_node_id", sa.Integer(), nullable=True),
        sa.Column("current_node_id", sa.Integer(), nullable=True),
        sa.Column("eta_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["current_node_id"], ["nodes.id"], name=op.f("fk_shipments_current_node_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["destination_node_id"], ["nodes.id"], name=op.f("fk_shipments_destination_node_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["origin_node_id"], ["nodes.id"], name=op.f("fk_shipments_origin_node_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["sub_order_id"],
            ["sub_orders.id"],
            name=op.f("fk_shipments_sub_order_id_sub_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("sub_order_id", name=op.f("uq_shipments_sub_order_id")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_current_node_id"), ["current_node_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_shipments_destination_node_id"), ["destination_node_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_shipments_origin_node_id"), ["origin_node_id"], unique=False)

    op.create_table(
        "legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_node_id", sa.Integer(), nullable=False),
        sa.Column("to_node_id", sa.Integer(), nullable=True),
        sa.Column("reverse", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("planned", "departed", "arrived", name="legstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("planned_depart_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("planned_arrive_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("departed_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_legs_seq_positive")),
        sa.CheckConstraint("to_node_id IS NULL OR from_node_id <> to_node_id", name=op.f("ck_legs_moves")),
        sa.ForeignKeyConstraint(["from_node_id"], ["nodes.id"], name=op.f("fk_legs_from_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_legs_shipment_id_shipments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["to_node_id"], ["nodes.id"], name=op.f("fk_legs_to_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legs")),
        sa.UniqueConstraint("shipment_id", "seq", name=op.f("uq_legs_shipment_id_seq")),
    )
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legs_from_node_id"), ["from_node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_legs_shipment_id"), ["shipment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_legs_to_node_id"), ["to_node_id"], unique=False)

    op.create_table(
        "scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("leg_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "collected",
                "departed",
                "arrived",
                "delivered",
                "exception",
                name="scankind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("scanned_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name=op.f("ck_scans_latitude_range")
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name=op.f("ck_scans_longitude_range")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_scans_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["leg_id"], ["legs.id"], name=op.f("fk_scans_leg_id_legs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_scans_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_scans_shipment_id_shipments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_scans_idempotency_key")),
    )
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scans_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scans_leg_id"), ["leg_id"], unique=False)
        batch_op.create_index("ix_scans_node_at", ["node_id", "scanned_at"], unique=False)
        batch_op.create_index("ix_scans_shipment_at", ["shipment_id", "scanned_at"], unique=False)

    with op.batch_alter_table("sub_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", domain.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sub_orders", schema=None) as batch_op:
        batch_op.drop_column("delivered_at")

    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.drop_index("ix_scans_shipment_at")
        batch_op.drop_index("ix_scans_node_at")
        batch_op.drop_index(batch_op.f("ix_scans_leg_id"))
        batch_op.drop_index(batch_op.f("ix_scans_actor_id"))

    op.drop_table("scans")
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legs_to_node_id"))
        batch_op.drop_index(batch_op.f("ix_legs_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_legs_from_node_id"))

    op.drop_table("legs")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_origin_node_id"))
        batch_op.drop_index(batch_op.f("ix_shipments_destination_node_id"))
        batch_op.drop_index(batch_op.f("ix_shipments_current_node_id"))

    op.drop_table("shipments")
