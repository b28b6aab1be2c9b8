"""flask commands: seed the demo data, import Guangdong's divisions."""

from __future__ import annotations

import click
from flask import Flask

from marketplace.db import get_db


def init_app(app: Flask) -> None:
    @app.cli.command("seed")
    def seed_command() -> None:
        """Load the demo data through the services (idempotent: a second run changes nothing)."""
        from seed.loader import load_all

        with get_db().sessionmaker() as session:
            report = load_all(session)
        for key, value in report.items():
            click.echo(f"{key}: {value}")
