"""wallet retries and method switches (issue 10, item 5)

payment_attempts: every try to pay an order (the method chosen, how it ended), all on the order's
one PaymentIntent. Payments that already reached the gateway get their first attempt from what
the payment row says.

Revision ID: 5f6a7b8c9d0e
Revises: 4e5f6a7b8c9d
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "5f6a7b8c9d0e"
down_revision: str | None = "4e5f6a7b8c9d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "card", "wechat_pay", "alipay", "cash", name="paymentmethod", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "started",
                "requires_action",
                "processing",
                "failed",
                "superseded",
                "succeeded",
                "canceled",
                name="attemptstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", domain.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("number > 0", name=op.f("ck_payment_attempts_number_positive")),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_attempts_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("payment_id", "number", name=op.f("uq_payment_attempts_payment_id_number")),
        sa.UniqueConstraint(
            "payment_id", "request_key", name=op.f("uq_payment_attempts_payment_id_request_key")
        ),
    )
    # The first attempt of every payment that reached the gateway, as its row stands now.
    op.execute(
        sa.text(
            """
            INSERT INTO payment_attempts
                (payment_id, number, method, request_key, status, error, created_at, ended_at)
            SELECT id, 1, method, idempotency_key,
                   CASE
                     WHEN status IN ('succeeded', 'requires_capture') THEN 'succeeded'
                     WHEN status = 'canceled' THEN 'canceled'
                     WHEN status = 'requires_action' THEN 'requires_action'
                     WHEN status = 'processing' THEN 'processing'
                     WHEN last_error <> '' THEN 'failed'
                     ELSE 'started'
                   END,
                   last_error, created_at,
                   CASE
                     WHEN status IN ('succeeded', 'requires_capture') THEN COALESCE(succeeded_at, updated_at)
                     WHEN status = 'canceled' THEN updated_at
                     ELSE NULL
                   END
            FROM payments
            WHERE intent_id IS NOT NULL
            """
        )
    )


def downgrade() -> None:
    op.drop_table("payment_attempts")
