"""villagers registered by village agents (issue 11, item 2)

The villagers table: a buyer of record a village agent shops for, with the recorded consent.
(The new SMS purpose villager_consent needs no schema change: purposes are a VARCHAR.)

Revision ID: 6a7b8c9d0e1f
Revises: 5f6a7b8c9d0e
Create Date: 2026-12-03 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import domain.base

revision: str = "6a7b8c9d0e1f"
down_revision: str | None = "5f6a7b8c9d0e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "villagers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("name_pinyin", sa.String(length=160), nullable=False),
        sa.Column("name_initials", sa.String(length=40), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("notes", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "consent_method",
            sa.Enum("in_person", "paper", "sms", name="consentmethod", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("consent_agent_id", sa.Integer(), nullable=False),
        sa.Column("consented_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", domain.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["point_id"], ["nodes.id"], name=op.f("fk_villagers_point_id_nodes")),
        sa.ForeignKeyConstraint(
            ["village_code"], ["divisions.code"], name=op.f("fk_villagers_village_code_divisions")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_villagers_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["consent_agent_id"], ["users.id"], name=op.f("fk_villagers_consent_agent_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_villagers")),
        sa.UniqueConstraint("point_id", "village_code", "name", "phone", name="uq_villagers_identity"),
        sa.UniqueConstraint("point_id", "idempotency_key", name="uq_villagers_idempotency_key"),
    )
    with op.batch_alter_table("villagers", schema=None) as batch_op:
        for column in ("point_id", "village_code", "name_pinyin", "name_initials", "phone", "user_id"):
            batch_op.create_index(batch_op.f(f"ix_villagers_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("villagers", schema=None) as batch_op:
        for column in ("user_id", "phone", "name_initials", "name_pinyin", "village_code", "point_id"):
            batch_op.drop_index(batch_op.f(f"ix_villagers_{column}"))
    op.drop_table("villagers")
