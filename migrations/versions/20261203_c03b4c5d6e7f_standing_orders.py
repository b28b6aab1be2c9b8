"""standing proxy orders (issue 11, item 8)

PLACEHOLDER: reserved in the chain; filled in by the work it names (or removed if not needed).

Revision ID: c03b4c5d6e7f
Revises: bf2a3b4c5d6e
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

revision: str = "c03b4c5d6e7f"
down_revision: str | None = "bf2a3b4c5d6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
