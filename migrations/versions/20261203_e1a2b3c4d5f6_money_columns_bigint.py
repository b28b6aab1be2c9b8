"""money columns bigint: every amount in fen becomes a 64-bit integer on PostgreSQL; orders
get an index by placer for the proxy-order caps

Revision ID: e1a2b3c4d5f6
Revises: d04f1fa426f3
Create Date: 2026-12-03 09:00:00.000000

PostgreSQL's INTEGER is 32-bit: an amount past ¥21,474,836.47 (2**31 - 1 fen) failed with
"integer out of range" (issue 9). The models use domain.base.Money (BIGINT on PostgreSQL).

SQLite is left alone: its INTEGER columns already store 64-bit values, and the models keep
them declared INTEGER there (a variant of the Money type), so no table is rebuilt.

Each table is altered in one statement, so PostgreSQL rewrites it once. The downgrade narrows the
columns again and fails (changing nothing) if an amount no longer fits in 32 bits.

ix_orders_placed_by_created: the caps and rate limit on orders a village agent placed for others
count them by placer and time (services.orders.checkout.check_limits), on both databases.
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'e1a2b3c4d5f6'
down_revision: str | None = 'd04f1fa426f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    'products': ('price_fen',),
    'orders': ('items_fen', 'shipping_fen', 'total_fen'),
    'sub_orders': ('items_fen', 'shipping_fen', 'total_fen', 'commission_fen', 'refunded_fen'),
    'order_lines': ('unit_price_fen', 'line_fen'),
    'payments': ('amount_fen', 'amount_received_fen', 'amount_refunded_fen'),
    'refunds': ('amount_fen',),
    'ledger_entries': ('amount_fen',),
    'payout_batches': ('total_fen',),
    'payouts': ('amount_fen',),
}


def _alter(sql_type: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: INTEGER is 64-bit already (see the module docstring)
    for table, columns in MONEY_COLUMNS.items():
        changes = ', '.join(f'ALTER COLUMN {c} TYPE {sql_type}' for c in columns)
        op.execute(f'ALTER TABLE {table} {changes}')


def upgrade() -> None:
    _alter('BIGINT')
    op.create_index('ix_orders_placed_by_created', 'orders', ['placed_by_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_placed_by_created', table_name='orders')
    _alter('INTEGER')
