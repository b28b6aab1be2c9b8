"""logins: server-side login sessions, known devices, login back-off per number (issue 9,
findings 6 and 11); users.failed_logins and users.locked_until go (failures are counted per
number in login_throttles now, not per account)

Revision ID: f7a8b9c0d1e2
Revises: e1a2b3c4d5f6
Create Date: 2026-12-03 03:42:17.807189
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base


revision: str = 'f7a8b9c0d1e2'
down_revision: str | None = 'e1a2b3c4d5f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttles',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', domain.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttles'))
    )
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttles_last_failed_at'), ['last_failed_at'], unique=False)

    op.create_table('known_devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', domain.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('blocked_until', domain.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_known_devices_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_known_devices')),
    sa.UniqueConstraint('user_id', 'token_hash', name=op.f('uq_known_devices_user_id_token_hash'))
    )
    with op.batch_alter_table('known_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_known_devices_token_hash'), ['token_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_known_devices_user_id'), ['user_id'], unique=False)

    op.create_table('login_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.Column('created_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', domain.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', domain.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_sessions_token_hash'))
    )
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')



def downgrade() -> None:
    # The per-account counter comes back empty: every account unlocked, as after a reset.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', domain.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('failed_logins', server_default=None)

    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_login_sessions_expires_at'))

    op.drop_table('login_sessions')
    with op.batch_alter_table('known_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_known_devices_user_id'))
        batch_op.drop_index(batch_op.f('ix_known_devices_token_hash'))

    op.drop_table('known_devices')
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttles_last_failed_at'))

    op.drop_table('login_throttles')
