"""produce intake by weight and lots (issue 11, item 5)

Adds intake_photos (photos the receiving agent took), intakes (the hand-in of one sub-order at a
point: who, where, under which key, what the goods cost after weighing and how the difference
went back), intake_lines (each order line weighed, graded, accepted) and lots (批次: each
accepted line, with its unguessable trace code and origin node) (domain/lots.py).

Revision ID: ae1f2a3b4c5d
Revises: 9d0e1f2a3b4c
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "ae1f2a3b4c5d"
down_revision: str | None = "9d0e1f2a3b4c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GRADE = sa.Enum("first", "second", "third", "rejected", name="grade", native_enum=False, length=16)


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, domain.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "intake_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_intake_photos_uploaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_photos")),
        sa.UniqueConstraint("key", name=op.f("uq_intake_photos_key")),
    )
    op.create_index(
        op.f("ix_intake_photos_uploaded_by_id"), "intake_photos", ["uploaded_by_id"], unique=False
    )

    op.create_table(
        "intakes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("received_by_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("goods_fen", MONEY, nullable=False),
        sa.Column("difference_fen", MONEY, nullable=False),
        sa.Column("settlement", sa.String(length=16), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        _when("received_at"),
        sa.CheckConstraint("goods_fen >= 0", name=op.f("ck_intakes_goods_nonnegative")),
        sa.CheckConstraint("difference_fen >= 0", name=op.f("ck_intakes_difference_nonnegative")),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_intakes_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["received_by_id"], ["users.id"], name=op.f("fk_intakes_received_by_id_users")
        ),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"], name=op.f("fk_intakes_refund_id_refunds")),
        sa.ForeignKeyConstraint(
            ["sub_order_id"], ["sub_orders.id"], name=op.f("fk_intakes_sub_order_id_sub_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intakes")),
        sa.UniqueConstraint(
            "received_by_id", "idempotency_key", name=op.f("uq_intakes_received_by_id_idempotency_key")
        ),
        sa.UniqueConstraint("sub_order_id", name=op.f("uq_intakes_sub_order_id")),
    )
    op.create_index(op.f("ix_intakes_received_by_id"), "intakes", ["received_by_id"], unique=False)
    op.create_index("ix_intakes_node_received", "intakes", ["node_id", "received_at"], unique=False)

    op.create_table(
        "intake_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("weighed_g", sa.Integer(), nullable=False),
        sa.Column("grade", GRADE, nullable=False),
        sa.Column("accepted_quantity", sa.Integer(), nullable=False),
        sa.Column("by_weight", sa.Boolean(), nullable=False),
        sa.Column("charged_fen", MONEY, nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("weighed_g >= 0", name=op.f("ck_intake_lines_weighed_nonnegative")),
        sa.CheckConstraint("accepted_quantity >= 0", name=op.f("ck_intake_lines_accepted_nonnegative")),
        sa.CheckConstraint("charged_fen >= 0", name=op.f("ck_intake_lines_charged_nonnegative")),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intakes.id"], name=op.f("fk_intake_lines_intake_id_intakes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_lines.id"], name=op.f("fk_intake_lines_order_line_id_order_lines")
        ),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["intake_photos.id"], name=op.f("fk_intake_lines_photo_id_intake_photos")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_lines")),
        sa.UniqueConstraint("order_line_id", name=op.f("uq_intake_lines_order_line_id")),
    )
    op.create_index(op.f("ix_intake_lines_intake_id"), "intake_lines", ["intake_id"], unique=False)

    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("intake_line_id", sa.Integer(), nullable=False),
        sa.Column("sub_order_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("weight_g", sa.Integer(), nullable=False),
        sa.Column("grade", GRADE, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        _when("received_at"),
        sa.Column("received_by_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("weight_g > 0", name=op.f("ck_lots_weight_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_lots_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intakes.id"], name=op.f("fk_lots_intake_id_intakes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["intake_line_id"], ["intake_lines.id"], name=op.f("fk_lots_intake_line_id_intake_lines")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_lots_node_id_nodes")),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_lines.id"], name=op.f("fk_lots_order_line_id_order_lines")
        ),
        sa.ForeignKeyConstraint(["photo_id"], ["intake_photos.id"], name=op.f("fk_lots_photo_id_intake_photos")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_lots_product_id_products")),
        sa.ForeignKeyConstraint(["received_by_id"], ["users.id"], name=op.f("fk_lots_received_by_id_users")),
        sa.ForeignKeyConstraint(["seller_id"], ["users.id"], name=op.f("fk_lots_seller_id_users")),
        sa.ForeignKeyConstraint(
            ["sub_order_id"], ["sub_orders.id"], name=op.f("fk_lots_sub_order_id_sub_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("code", name=op.f("uq_lots_code")),
        sa.UniqueConstraint("intake_line_id", name=op.f("uq_lots_intake_line_id")),
        sa.UniqueConstraint("order_line_id", name=op.f("uq_lots_order_line_id")),
    )
    op.create_index(op.f("ix_lots_intake_id"), "lots", ["intake_id"], unique=False)
    op.create_index(op.f("ix_lots_sub_order_id"), "lots", ["sub_order_id"], unique=False)
    op.create_index(op.f("ix_lots_product_id"), "lots", ["product_id"], unique=False)
    op.create_index(op.f("ix_lots_seller_id"), "lots", ["seller_id"], unique=False)
    op.create_index("ix_lots_node_received", "lots", ["node_id", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_lots_node_received", table_name="lots")
    op.drop_index(op.f("ix_lots_seller_id"), table_name="lots")
    op.drop_index(op.f("ix_lots_product_id"), table_name="lots")
    op.drop_index(op.f("ix_lots_sub_order_id"), table_name="lots")
    op.drop_index(op.f("ix_lots_intake_id"), table_name="lots")
    op.drop_table("lots")
    op.drop_index(op.f("ix_intake_lines_intake_id"), table_name="intake_lines")
    op.drop_table("intake_lines")
    op.drop_index("ix_intakes_node_received", table_name="intakes")
    op.drop_index(op.f("ix_intakes_received_by_id"), table_name="intakes")
    op.drop_table("intakes")
    op.drop_index(op.f("ix_intake_photos_uploaded_by_id"), table_name="intake_photos")
    op.drop_table("intake_photos")
