"""wallet retries and method switches (issue 10, item 5)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: 5f6a7b8c9d0e
Revises: 4e5f6a7b8c9d
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

revision: str = "5f6a7b8c9d0e"
down_revision: str | None = "4e5f6a7b8c9d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
