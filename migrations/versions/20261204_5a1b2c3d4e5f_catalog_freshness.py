"""catalog_freshness: the version of what the shop's lists show (issue 13, item 5)

One row. Every change a list page shows (a listing's price, status or stock state, a campaign
edited) adds one to its version in the change's transaction (services/catalog/freshness.py);
the shop's page cache keys its entries by it, so every process sees the change on its next
request.

Revision ID: 5a1b2c3d4e5f
Revises: 4e8b4c5d6e78
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "5a1b2c3d4e5f"
down_revision: str | None = "4e8b4c5d6e78"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "catalog_freshness",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("changed_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_catalog_freshness_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_freshness")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0, "reason": "", "changed_at": None}])


def downgrade() -> None:
    op.drop_table("catalog_freshness")
