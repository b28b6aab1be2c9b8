"""Migrations: the full chain runs both ways, and the models match what the migrations build."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from domain import Base
from domain.base import include_object
from marketplace.db import make_engine
from tests.conftest import alembic_config


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
        assert diff == [], f"models differ from migrations; autogenerate a revision: {diff}"
