"""agents' commissions by category rates (issue 11, item 6)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: bf2a3b4c5d6e
Revises: ae1f2a3b4c5d
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

revision: str = "bf2a3b4c5d6e"
down_revision: str | None = "ae1f2a3b4c5d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
