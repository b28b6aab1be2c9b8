"""An index for a category's county facet: the category page counts its products per county
from the index alone (an index-only scan) instead of visiting every product row.

Revision ID: 7c3d4e5f6071
Revises: 6b2c3d4e5f60
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision: str = "7c3d4e5f6071"
down_revision: str | None = "6b2c3d4e5f60"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.create_index(
            "ix_products_category_status_county", ["category_id", "status", "county_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_index("ix_products_category_status_county")
