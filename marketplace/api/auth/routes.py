"""Accounts API: tokens, SMS codes, registration, the current user."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_auth", __name__, description="Accounts and API tokens")
