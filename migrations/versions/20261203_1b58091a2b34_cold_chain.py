"""cold chain: temperature loggers, readings, excursions and the lots they mark (issue 12, item 7)

Adds temperature_loggers (a device in a vehicle or a node's cold store, the storage class it
watches, its API token's hash), temperature_readings (tenths of a degree, unique per logger and
instant), excursions (copied with the logger's node and county for the staff's list) and
excursion_lots; notifications.order_id becomes nullable for messages to staff about no order
(domain/coldchain.py, domain/notifications.py).

Revision ID: 1b58091a2b34
Revises: 2c691a2b3c45
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "1b58091a2b34"
down_revision: str | None = "2c691a2b3c45"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "temperature_loggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column(
            "storage_class",
            sa.Enum("ambient", "chilled", "frozen", name="storageclass", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_reading_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_temperature_loggers_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_temperature_loggers_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_temperature_loggers_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_temperature_loggers")),
        sa.UniqueConstraint("serial", name=op.f("uq_temperature_loggers_serial")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_temperature_loggers_token_hash")),
    )
    with op.batch_alter_table("temperature_loggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_temperature_loggers_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_temperature_loggers_vehicle_id"), ["vehicle_id"], unique=False)

    op.create_table(
        "excursions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("logger_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column(
            "storage_class",
            sa.Enum("ambient", "chilled", "frozen", name="storageclass", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("started_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("open_ended", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("min_tenths", sa.SmallInteger(), nullable=False),
        sa.Column("max_tenths", sa.SmallInteger(), nullable=False),
        sa.Column("worst_tenths", sa.SmallInteger(), nullable=False),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ended_at >= started_at", name=op.f("ck_excursions_ordered")),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["users.id"], name=op.f("fk_excursions_acknowledged_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["county_code"], ["divisions.code"], name=op.f("fk_excursions_county_code_divisions")
        ),
        sa.ForeignKeyConstraint(
            ["logger_id"],
            ["temperature_loggers.id"],
            name=op.f("fk_excursions_logger_id_temperature_loggers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_excursions_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_excursions")),
        sa.UniqueConstraint("logger_id", "started_at", name=op.f("uq_excursions_logger_id_started_at")),
    )
    with op.batch_alter_table("excursions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_excursions_county_open", ["county_code", "acknowledged_at", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_excursions_node_open", ["node_id", "acknowledged_at", "started_at"], unique=False
        )

    op.create_table(
        "temperature_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("logger_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("celsius_tenths", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "celsius_tenths BETWEEN -600 AND 800", name=op.f("ck_temperature_readings_celsius_range")
        ),
        sa.ForeignKeyConstraint(
            ["logger_id"],
            ["temperature_loggers.id"],
            name=op.f("fk_temperature_readings_logger_id_temperature_loggers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_temperature_readings")),
        sa.UniqueConstraint(
            "logger_id", "measured_at", name=op.f("uq_temperature_readings_logger_id_measured_at")
        ),
    )
    op.create_table(
        "excursion_lots",
        sa.Column("excursion_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["excursion_id"],
            ["excursions.id"],
            name=op.f("fk_excursion_lots_excursion_id_excursions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_excursion_lots_lot_id_lots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("excursion_id", "lot_id", name=op.f("pk_excursion_lots")),
    )
    with op.batch_alter_table("excursion_lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_excursion_lots_lot_id"), ["lot_id"], unique=False)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE order_id IS NULL")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("excursion_lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_excursion_lots_lot_id"))

    op.drop_table("excursion_lots")
    op.drop_table("temperature_readings")
    with op.batch_alter_table("excursions", schema=None) as batch_op:
        batch_op.drop_index("ix_excursions_node_open")
        batch_op.drop_index("ix_excursions_county_open")

    op.drop_table("excursions")
    with op.batch_alter_table("temperature_loggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_temperature_loggers_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_temperature_loggers_node_id"))

    op.drop_table("temperature_loggers")
