"""lot events as an SM3 hash chain (issue 12, item 8)

Adds lot_events (each event of a lot as the canonical JSON that was hashed, with the hash before
it and its own, and the scan it was made from) and lots.chain_head (the chain's newest hash, kept
apart from the events) (domain/lots.py, services/logistics/trace.py).

Revision ID: 3d7a2b3c4d56
Revises: e25d6e7f8091
Create Date: 2026-12-03 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "3d7a2b3c4d56"
down_revision: str | None = "e25d6e7f8091"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lot_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("happened_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_lot_events_lot_id_lots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_lot_events_scan_id_scans"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_lot_events_hash")),
        sa.UniqueConstraint("lot_id", "seq", name=op.f("uq_lot_events_lot_id_seq")),
    )
    op.create_index(op.f("ix_lot_events_scan_id"), "lot_events", ["scan_id"], unique=False)
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_head", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_column("chain_head")
    op.drop_index(op.f("ix_lot_events_scan_id"), table_name="lot_events")
    op.drop_table("lot_events")
