"""webhook events retried with backoff (issue 10, item 6); refund keys renewed (item 4)

Webhook events get their attempts, the time of the next one, a lease (`locked_until`,
`locked_by`) so two runners never process one event, the time they were given up, and a longer
last error. Events received but not processed before this revision are due at once.

Refunds get `key_generation` and `key_used_at`: a refund sent again after the gateway may have
forgotten its Idempotency-Key (about 24 hours), once a lookup found nothing, goes with the next
key of the same name.

Revision ID: 2c3d4e5f6a7b
Revises: 1b2c3d4e5f6a
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "2c3d4e5f6a7b"
down_revision: str | None = "1b2c3d4e5f6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # webhook_events is referenced by no other table: a batch rebuild on SQLite is safe.
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", domain.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("gave_up_at", domain.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_until", domain.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_by", sa.String(length=64), nullable=False, server_default=""))
        batch.alter_column(
            "error", existing_type=sa.String(length=300), type_=sa.Text(), existing_nullable=False
        )
    # Received and never processed (the queue lost it, or it failed): due now; one that failed
    # counts as one attempt made.
    op.execute(
        sa.text(
            "UPDATE webhook_events SET next_attempt_at = received_at,"
            " attempts = CASE WHEN error <> '' THEN 1 ELSE 0 END WHERE processed_at IS NULL"
        )
    )
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column("attempts", server_default=None)
        batch.alter_column("locked_by", server_default=None)
        batch.create_index(op.f("ix_webhook_events_next_attempt_at"), ["next_attempt_at"], unique=False)

    # ADD COLUMN in place on both databases (no batch rebuild of refunds on SQLite).
    op.add_column("refunds", sa.Column("key_generation", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("refunds", sa.Column("key_used_at", domain.base.UTCDateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("refunds", "key_generation", server_default=None)


def downgrade() -> None:
    op.drop_column("refunds", "key_used_at")
    op.drop_column("refunds", "key_generation")
    # The last error goes back to 300 characters.
    op.execute(sa.text("UPDATE webhook_events SET error = substr(error, 1, 300)"))
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index(op.f("ix_webhook_events_next_attempt_at"))
        batch.alter_column(
            "error", existing_type=sa.Text(), type_=sa.String(length=300), existing_nullable=False
        )
        batch.drop_column("locked_by")
        batch.drop_column("locked_until")
        batch.drop_column("gave_up_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
