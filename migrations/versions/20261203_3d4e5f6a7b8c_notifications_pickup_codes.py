"""notifications and pickup codes (issue 10, item 9)

The notifications outbox (one row per event per order, unique by its dedupe key), the kinds of
optional message each user turned off, and the pickup codes of pickup orders (a salt and a keyed
hash; never the code).

Revision ID: 3d4e5f6a7b8c
Revises: 2c3d4e5f6a7b
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "3d4e5f6a7b8c"
down_revision: str | None = "2c3d4e5f6a7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = (
    "paid",
    "accepted",
    "handed_in",
    "ready_for_pickup",
    "out_for_delivery",
    "refunded",
    "pickup_code",
)
STATUSES = ("pending", "sent", "failed", "skipped")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=96), nullable=False),
        sa.Column(
            "event", sa.Enum(*EVENTS, name="notificationevent", native_enum=False, length=24), nullable=False
        ),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="notificationstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_notifications_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sub_order_id"],
            ["sub_orders.id"],
            name=op.f("fk_notifications_sub_order_id_sub_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index(op.f("ix_notifications_order_id"), "notifications", ["order_id"], unique=False)
    op.create_index(op.f("ix_notifications_sub_order_id"), "notifications", ["sub_order_id"], unique=False)
    op.create_index(op.f("ix_notifications_user_id"), "notifications", ["user_id"], unique=False)
    op.create_index(
        "ix_notifications_status_next_attempt_at",
        "notifications",
        ["status", "next_attempt_at"],
        unique=False,
    )

    op.create_table(
        "notification_opt_outs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "event", sa.Enum(*EVENTS, name="notificationevent", native_enum=False, length=24), nullable=False
        ),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notification_opt_outs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "event", name=op.f("pk_notification_opt_outs")),
    )

    op.create_table(
        "pickup_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("issue", sa.Integer(), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_pickup_codes_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickup_codes")),
        sa.UniqueConstraint("order_id", name=op.f("uq_pickup_codes_order_id")),
    )


def downgrade() -> None:
    op.drop_table("pickup_codes")
    op.drop_table("notification_opt_outs")
    op.drop_index("ix_notifications_status_next_attempt_at", table_name="notifications")
    op.drop_index(op.f("ix_notifications_user_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_sub_order_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_order_id"), table_name="notifications")
    op.drop_table("notifications")
