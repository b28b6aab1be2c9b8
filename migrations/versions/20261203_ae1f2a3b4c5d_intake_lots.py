"""produce intake by weight and lots (issue 11, item 5)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: ae1f2a3b4c5d
Revises: 9d0e1f2a3b4c
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

revision: str = "ae1f2a3b4c5d"
down_revision: str | None = "9d0e1f2a3b4c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
