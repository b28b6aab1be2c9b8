"""shipments.flagged_at: a parcel the flag-stuck-parcels job found stuck (issue 12, item 9)

Set by the job (waiting at a node too long past its next leg's planned departure, or late on a
leg under way), cleared by the parcel's next move (services/logistics/exceptions.py).

Revision ID: 4e8b4c5d6e78
Revises: 1b58091a2b34
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "4e8b4c5d6e78"
down_revision: str | None = "1b58091a2b34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flagged_at", domain.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_column("flagged_at")
