"""refunds after payout netted; ledger checks (issue 10, items 2 and 10)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: 4e5f6a7b8c9d
Revises: 3d4e5f6a7b8c
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

revision: str = "4e5f6a7b8c9d"
down_revision: str | None = "3d4e5f6a7b8c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
