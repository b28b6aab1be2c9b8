"""refunds after payout netted; ledger checks (issue 10, items 2 and 10)

A payout records what its sub-orders owe the seller (`gross_fen`) and what was netted from the
seller's carried balance (`netted_fen`, refunds made after an earlier payout); `amount_fen`, what
the bank transfers, may now be 0 (netting took all of it) but never less. Existing payouts were
never netted: their gross is their amount.

SQLite cannot change a CHECK in place, and a batch rebuild (copy, drop, rename) of `payouts`
fails on the sub-orders and ledger transactions that point at it: the table is copied aside,
dropped and made again with foreign keys deferred to the commit, where every reference is checked.

Revision ID: 4e5f6a7b8c9d
Revises: 3d4e5f6a7b8c
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "4e5f6a7b8c9d"
down_revision: str | None = "3d4e5f6a7b8c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPY_IN = (
    "INSERT INTO payouts (id, batch_id, seller_id, amount_fen, sub_order_count, gross_fen, netted_fen)"
    " SELECT id, batch_id, seller_id, amount_fen, sub_order_count, amount_fen, 0 FROM _payouts_before"
)
COPY_BACK = (
    "INSERT INTO payouts (id, batch_id, seller_id, amount_fen, sub_order_count)"
    " SELECT id, batch_id, seller_id, amount_fen, sub_order_count FROM _payouts_before"
)


def _payouts_table(*, netting: bool) -> None:
    """`payouts` as the model has it (netting=True) or as it was before this revision."""
    money = domain.base.MONEY_TYPE
    columns = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", money, nullable=False),
    ]
    if netting:
        columns += [
            sa.Column("gross_fen", money, nullable=False),
            sa.Column("netted_fen", money, nullable=False),
        ]
    columns.append(sa.Column("sub_order_count", sa.Integer(), nullable=False))
    checks = (
        [
            sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_payouts_amount_nonnegative")),
            sa.CheckConstraint("netted_fen >= 0", name=op.f("ck_payouts_netted_nonnegative")),
            sa.CheckConstraint(
                "gross_fen > 0 AND gross_fen = amount_fen + netted_fen", name=op.f("ck_payouts_gross_adds_up")
            ),
        ]
        if netting
        else [sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payouts_amount_positive"))]
    )
    op.create_table(
        "payouts",
        *columns,
        *checks,
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["payout_batches.id"],
            name=op.f("fk_payouts_batch_id_payout_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["seller_id"], ["users.id"], name=op.f("fk_payouts_seller_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
    )
    op.create_index(op.f("ix_payouts_batch_id"), "payouts", ["batch_id"], unique=False)
    op.create_index(op.f("ix_payouts_seller_id"), "payouts", ["seller_id"], unique=False)


def _rebuild_sqlite(*, netting: bool, copy: str) -> None:
    # Deferred: the sub-orders and ledger transactions pointing at payouts are orphans between
    # the DROP and the re-INSERT; the commit checks them all (a real orphan still fails it).
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TEMP TABLE _payouts_before AS SELECT * FROM payouts")
    op.drop_index(op.f("ix_payouts_seller_id"), table_name="payouts")
    op.drop_index(op.f("ix_payouts_batch_id"), table_name="payouts")
    op.drop_table("payouts")
    _payouts_table(netting=netting)
    op.execute(copy)
    op.execute("DROP TABLE _payouts_before")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(netting=True, copy=COPY_IN)
        return
    op.add_column("payouts", sa.Column("gross_fen", domain.base.MONEY_TYPE, nullable=True))
    op.add_column(
        "payouts", sa.Column("netted_fen", domain.base.MONEY_TYPE, nullable=False, server_default="0")
    )
    op.execute("UPDATE payouts SET gross_fen = amount_fen")
    op.alter_column("payouts", "gross_fen", nullable=False)
    op.alter_column("payouts", "netted_fen", server_default=None)
    op.drop_constraint(op.f("ck_payouts_amount_positive"), "payouts", type_="check")
    op.create_check_constraint(op.f("ck_payouts_amount_nonnegative"), "payouts", "amount_fen >= 0")
    op.create_check_constraint(op.f("ck_payouts_netted_nonnegative"), "payouts", "netted_fen >= 0")
    op.create_check_constraint(
        op.f("ck_payouts_gross_adds_up"), "payouts", "gross_fen > 0 AND gross_fen = amount_fen + netted_fen"
    )


def downgrade() -> None:
    # Before this revision a payout was money transferred: one that netting took all of (amount
    # 0) has no such form. Refuse rather than drop what a seller was settled by.
    zero = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM payouts WHERE amount_fen = 0")).scalar()
    if zero:
        raise RuntimeError(
            f"{zero} payouts were settled wholly by netting (amount 0); the schema before"
            " revision 4e5f6a7b8c9d cannot hold them, so it is not downgraded."
        )
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(netting=False, copy=COPY_BACK)
        return
    op.drop_constraint(op.f("ck_payouts_gross_adds_up"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_netted_nonnegative"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_amount_nonnegative"), "payouts", type_="check")
    op.create_check_constraint(op.f("ck_payouts_amount_positive"), "payouts", "amount_fen > 0")
    op.drop_column("payouts", "netted_fen")
    op.drop_column("payouts", "gross_fen")
