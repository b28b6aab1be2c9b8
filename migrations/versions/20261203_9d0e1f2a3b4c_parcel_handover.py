"""parcels handed over at the village point (issue 11, item 4)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: 9d0e1f2a3b4c
Revises: 8c9d0e1f2a3b
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

revision: str = "9d0e1f2a3b4c"
down_revision: str | None = "8c9d0e1f2a3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
