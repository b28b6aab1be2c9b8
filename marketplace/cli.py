"""flask commands: seed the demo data, import Guangdong's divisions."""

from __future__ import annotations

import click
from flask import Flask

from marketplace.db import get_db
from marketplace.gateways import media_storage


def init_app(app: Flask) -> None:
    @app.cli.command("reindex-search")
    def reindex_search_command() -> None:
        """Rebuild every product's search document (after an upgrade that changed the analysis)."""
        from services import search

        with get_db().sessionmaker() as session:
            click.echo(f"indexed: {search.rebuild_index(session)}")

    @app.cli.command("seed")
    def seed_command() -> None:
        """Load the demo data through the services (idempotent: a second run changes nothing)."""
        from seed.loader import load_all

        with get_db().sessionmaker() as session:
            report = load_all(session, storage=media_storage())
        for key, value in report.items():
            click.echo(f"{key}: {value}")
