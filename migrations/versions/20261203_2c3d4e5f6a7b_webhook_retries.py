"""webhook events retried with backoff (issue 10, item 6)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: 2c3d4e5f6a7b
Revises: 1b2c3d4e5f6a
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

revision: str = "2c3d4e5f6a7b"
down_revision: str | None = "1b2c3d4e5f6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
