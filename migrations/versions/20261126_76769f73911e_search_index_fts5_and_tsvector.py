"""search index: FTS5 documents on SQLite, tsvector + GIN on PostgreSQL; ranked postings; pinyin vocabulary

Revision ID: 76769f73911e
Revises: f0bfedc66a34
Create Date: 2026-11-26 03:10:00.000000

Not models (an FTS5 virtual table has none): services.search.store describes these tables, and
the drift check leaves out tables named search_*. Existing products are not indexed here: run
services.search.rebuild_index once after upgrading a database that already has products.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '76769f73911e'
down_revision: str | None = 'f0bfedc66a34'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        # One column per field of pre-tokenised text; unicode61 splits on the spaces and keeps
        # ideograph words whole. detail=column: column filters and prefixes, no phrase positions.
        op.execute(
            "CREATE VIRTUAL TABLE search_documents USING fts5("
            "name, parts, pinyin, initials, syllables, chars, places, body, name_len UNINDEXED, posted UNINDEXED, "
            "tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3 4', detail = column)"
        )
        collation = None
    else:
        op.create_table(
            'search_documents',
            sa.Column('product_id', sa.Integer(), nullable=False),
            sa.Column('name_len', sa.SmallInteger(), nullable=False),
            sa.Column('doc', postgresql.TSVECTOR(), nullable=False),
            # The document's postings as "token/rank …", to delete exactly those on a reindex.
            sa.Column('posted', sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ['product_id'], ['products.id'],
                name=op.f('fk_search_documents_product_id_products'), ondelete='CASCADE',
            ),
            sa.PrimaryKeyConstraint('product_id', name=op.f('pk_search_documents')),
        )
        # A small pending list: cheap bulk inserts, and no long list for every search to scan.
        op.execute(
            'CREATE INDEX ix_search_documents_doc ON search_documents USING gin (doc) '
            'WITH (fastupdate = on, gin_pending_list_limit = 256)'
        )
        # The default statistics keep too few lexemes: a rare word (or a typo) was estimated at
        # thousands of rows and searched with a table scan. Searches read few rows: starting
        # parallel workers costs more than it saves.
        op.execute('ALTER TABLE search_documents ALTER COLUMN doc SET STATISTICS 2000')
        op.execute('ALTER TABLE search_documents SET (parallel_workers = 0)')
        collation = 'C'  # byte order, so that a pinyin prefix is an index range

    # (token, rank, product): a one-word query reads its best products off the front of a range.
    # No foreign key: it would need an index on product_id as large again; the document's
    # `posted` column lists what to delete.
    op.create_table(
        'search_postings',
        sa.Column('token', sa.String(length=64, collation=collation), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('token', 'rank', 'product_id', name=op.f('pk_search_postings')),
        sqlite_with_rowid=False,
    )
    op.create_table(
        'search_words',
        sa.Column('word', sa.String(length=64), nullable=False),
        sa.Column('pinyin', sa.String(length=128, collation=collation), nullable=False),
        sa.Column('initials', sa.String(length=64, collation=collation), nullable=False),
        sa.PrimaryKeyConstraint('word', 'pinyin', name=op.f('pk_search_words')),
    )
    op.create_index('ix_search_words_pinyin', 'search_words', ['pinyin'])
    op.create_index('ix_search_words_initials', 'search_words', ['initials'])
    op.create_table(
        'search_fuzzy',
        sa.Column('key', sa.String(length=64, collation=collation), nullable=False),
        sa.Column('pinyin', sa.String(length=64, collation=collation), nullable=False),
        sa.PrimaryKeyConstraint('key', 'pinyin', name=op.f('pk_search_fuzzy')),
    )


def downgrade() -> None:
    op.drop_table('search_fuzzy')
    op.drop_table('search_postings')
    op.drop_index('ix_search_words_initials', table_name='search_words')
    op.drop_index('ix_search_words_pinyin', table_name='search_words')
    op.drop_table('search_words')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TABLE search_documents')  # and its FTS5 shadow tables
    else:
        op.drop_index('ix_search_documents_doc', table_name='search_documents')
        op.drop_table('search_documents')
