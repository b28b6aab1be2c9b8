"""flask commands: seed the demo data (development only), create an admin, rebuild search."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click
from flask import Flask, current_app

from marketplace.config import PRODUCTION
from marketplace.db import get_db
from marketplace.gateways import checkout_settings, media_storage, notification_channel, pickup_code_keys

# An admin moves money and grants roles: a longer password than the 8 characters users need.
ADMIN_MIN_PASSWORD = 12


def init_app(app: Flask) -> None:
    @app.cli.command("reindex-search")
    def reindex_search_command() -> None:
        """Rebuild every product's search document (after an upgrade that changed the analysis)."""
        from services import search

        with get_db().sessionmaker() as session:
            click.echo(f"indexed: {search.rebuild_index(session)}")

    @app.cli.command("seed")
    @click.option(
        "--history/--no-history",
        default=True,
        help="Also place, pay and move the demo's orders and the demo agent's proxy orders"
        " (through a localstripe: seed/gateway.py).",
    )
    def seed_command(history: bool) -> None:
        """Load the demo data through the services (idempotent: a second run changes nothing)."""
        if current_app.config.get("APP_ENV") == PRODUCTION:
            # The demo accounts share a published password, an admin among them.
            raise click.ClickException(
                "flask seed loads demo accounts with a published password: it does not run in"
                " production (APP_ENV=production). Create the admin with `flask create-admin`."
            )
        from seed import gateway as demo
        from seed.history import GatewayMismatch, gateway_unused, load_demo

        with get_db().sessionmaker() as session:
            fresh = gateway_unused(session)
            paying = demo.demo_gateway(current_app.config, fresh=fresh) if history else nullcontext()
            with paying as found:
                if history and found is None:
                    click.echo("order history: skipped (STRIPE_API_BASE is no localstripe on this machine)")
                try:
                    report = load_demo(
                        session,
                        storage=media_storage(),
                        gateway=found.gateway if found else None,
                        settings=checkout_settings(),
                        pickup_keys=pickup_code_keys(),
                        wallet_url=found.url if found else None,
                        channel=notification_channel(),
                    )
                except GatewayMismatch as exc:
                    raise click.ClickException(str(exc)) from exc
        for key, value in report.items():
            click.echo(f"{key}: {value}")

    @app.cli.command("create-admin")
    @click.option("--phone", required=True, help="The admin's mobile number (11 digits, 1[3-9]…).")
    @click.option("--name", default="", help="Display name shown to staff.")
    @click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from the first line of standard input (for scripts) instead of asking.",
    )
    def create_admin_command(phone: str, name: str, password_stdin: bool) -> None:
        """Create a platform admin with a password the operator chooses (asked twice, not echoed)."""
        from domain import Role
        from seed.loader import DEMO_PASSWORD
        from services import accounts
        from services.errors import ServiceError

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if password == DEMO_PASSWORD:
            raise click.ClickException("That is the published demo password: choose another.")
        if len(password) < ADMIN_MIN_PASSWORD:
            raise click.ClickException(f"An admin's password needs at least {ADMIN_MIN_PASSWORD} characters.")
        with get_db().session_scope() as session:
            try:
                user = accounts.create_user(
                    session, phone=phone, password=password, display_name=name, roles=(Role.ADMIN,)
                )
            except ServiceError as exc:
                session.rollback()
                raise click.ClickException(str(exc.message)) from exc
            click.echo(f"admin created: user {user.id}, {user.phone}")
