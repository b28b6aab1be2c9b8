"""notifications and pickup codes (issue 10, item 9)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: 3d4e5f6a7b8c
Revises: 2c3d4e5f6a7b
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

revision: str = "3d4e5f6a7b8c"
down_revision: str | None = "2c3d4e5f6a7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
