"""Migrations: the full chain runs both ways, and the models match what the migrations build."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from domain import Base
from domain.base import include_object
from marketplace.db import make_engine
from tests.conftest import alembic_config


def _checked_at_commit() -> set[str]:
    """The foreign keys the models mark domain.base.shared_row."""
    return {
        str(fk.name)
        for table in Base.metadata.tables.values()
        for fk in table.foreign_key_constraints
        if fk.initially == "DEFERRED"
    }


class TestMigrationChain:
    def test_upgrade_downgrade_upgrade_leaves_the_full_schema(self, new_database):
        url = new_database("migrations")
        cfg = alembic_config(url)
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "base")
        engine = make_engine(url)
        try:
            leftover = set(inspect(engine).get_table_names()) - {"alembic_version"}
            assert leftover == set(), f"downgrade base left tables behind: {leftover}"
            command.upgrade(cfg, "head")
            tables = set(inspect(engine).get_table_names())
            assert set(Base.metadata.tables) <= tables
        finally:
            engine.dispose()

    def test_models_and_migrations_do_not_drift(self, engine):
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(ctx, Base.metadata)
        if engine.dialect.name == "sqlite":
            # The foreign keys to rows many checkouts share are checked at commit on PostgreSQL
            # only (domain.base.shared_row): SQLite keeps them immediate. Nothing else may differ.
            deferred = _checked_at_commit()
            diff = [d for d in diff if not (d[0] in ("add_fk", "remove_fk") and d[1].name in deferred)]
        assert diff == [], f"models differ from migrations; autogenerate a revision: {diff}"

    def test_the_foreign_keys_to_shared_rows_are_checked_at_commit_on_postgresql(self, engine):
        """Exactly the foreign keys the models mark shared_row are deferred in PostgreSQL (a
        checkout's INSERTs then hold no lock on the product, its seller, the campaign …)."""
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no row locks: its foreign keys stay immediate")
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferrable AND condeferred"
            ).scalars()
            found = set(rows)
        expected = _checked_at_commit()
        assert expected and found == expected
