"""Who is asking: Flask-Login sessions for pages, bearer tokens for the API."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import lazy_gettext
from flask_login import current_user

from domain import User
from marketplace.db import get_session
from marketplace.extensions import login_manager
from services import accounts


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(login_id: str) -> User | None:
        # The API authenticates by bearer token only: a browser's session cookie must not
        # authorize a cross-site request there (the API has no CSRF token).
        if request.path.startswith("/api/"):
            return None
        return accounts.load_login_user(get_session(), login_id)

    @login_manager.request_loader
    def load_user_from_token(req) -> User | None:  # type: ignore[no-untyped-def]
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return accounts.authenticate_token(get_session(), header[len("Bearer ") :].strip())


def actor() -> User | None:
    """The logged-in user as the services see it (None when anonymous)."""
    return current_user if getattr(current_user, "is_authenticated", False) else None  # type: ignore[return-value]


def auth_policy() -> accounts.AuthPolicy:
    c = current_app.config
    return accounts.AuthPolicy(
        code_ttl_seconds=c["SMS_CODE_TTL_SECONDS"],
        code_max_attempts=c["SMS_CODE_MAX_ATTEMPTS"],
        codes_per_phone_per_hour=c["SMS_CODES_PER_PHONE_PER_HOUR"],
        code_resend_seconds=c["SMS_CODE_RESEND_SECONDS"],
        login_max_failures=c["LOGIN_MAX_FAILURES"],
        login_lock_seconds=c["LOGIN_LOCK_SECONDS"],
        token_ttl_days=c["API_TOKEN_TTL_DAYS"],
    )


def client_ip() -> str:
    return request.remote_addr or ""
