"""Who is asking: server-side login sessions for pages, bearer tokens for the API.

Pages: each login is a `LoginSession` row (services.accounts). Flask's signed session cookie and
Flask-Login's remember cookie carry only that session's random token (in the place Flask-Login
keeps a user id), so logging out or resetting the password revokes them wherever they were copied.
`start_login` rotates the session at login; `end_login` ends it.

API: bearer tokens only, whatever cookies the request carries (the API has no CSRF token, so a
browser's cookie must never authorize it).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, after_this_request, current_app, request, session
from flask_babel import lazy_gettext
from flask_login import current_user, login_user, logout_user

from domain import User
from marketplace.db import get_session
from marketplace.extensions import login_manager
from services import accounts

# A long-lived, HttpOnly cookie that makes this browser a known device of the accounts that
# logged in on it (services.accounts.authenticate lets it in during a back-off).
DEVICE_COOKIE = "gdm_device"
DEVICE_COOKIE_PATH = "/auth"
# What survives the session's rotation at login: the language chosen and the guest's cart (merged
# into the account's cart right after).
_KEPT_AT_LOGIN = ("lang", "cart")


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(login_id: str) -> User | None:
        # Called with the token from the session or from the remember cookie. Never on the API.
        if _is_api():
            return None
        return accounts.load_session_user(get_session(), str(login_id), auth_policy())

    @app.before_request
    def api_by_bearer_token_only() -> None:
        # Flask-Login would try the session and the remember cookie first and never reach a
        # request loader while a remember cookie is present: decide the API's user here instead.
        if _is_api():
            login_manager._update_request_context_with_user(_bearer_user())


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    secret = header[len("Bearer ") :].strip()
    if not secret or len(secret) > 256:
        return None
    return accounts.authenticate_token(get_session(), secret)


def actor() -> User | None:
    """The logged-in user as the services see it (None when anonymous)."""
    return current_user if getattr(current_user, "is_authenticated", False) else None  # type: ignore[return-value]


def auth_policy() -> accounts.AuthPolicy:
    c = current_app.config
    remember = c.get("REMEMBER_COOKIE_DURATION")  # seconds or a timedelta, as Flask-Login takes it
    remember_seconds = remember.total_seconds() if isinstance(remember, timedelta) else remember
    remember_days = int(remember_seconds // 86400) if remember_seconds else accounts.AuthPolicy.remember_days
    return accounts.AuthPolicy(
        code_ttl_seconds=c["SMS_CODE_TTL_SECONDS"],
        code_max_attempts=c["SMS_CODE_MAX_ATTEMPTS"],
        codes_per_phone_per_hour=c["SMS_CODES_PER_PHONE_PER_HOUR"],
        code_resend_seconds=c["SMS_CODE_RESEND_SECONDS"],
        login_max_failures=c["LOGIN_MAX_FAILURES"],
        login_lock_seconds=c["LOGIN_LOCK_SECONDS"],
        token_ttl_days=c["API_TOKEN_TTL_DAYS"],
        remember_days=max(1, remember_days),
        throttle_key=str(c["SECRET_KEY"]),
    )


def client_ip() -> str:
    return request.remote_addr or ""


def device_token() -> str:
    """This browser's known-device token, if it has one."""
    return request.cookies.get(DEVICE_COOKIE, "")


def start_login(user: User, *, remember: bool = False) -> None:
    """Log `user` in on this browser, in a new session: whatever the session held before (but
    the language and the guest's cart) is dropped, a previous login on it is ended, and the
    browser becomes a known device of the account."""
    db = get_session()
    policy = auth_policy()
    previous = session.get("_user_id")
    if previous:
        accounts.end_login_session(db, str(previous))
    kept = {k: session[k] for k in _KEPT_AT_LOGIN if k in session}
    session.clear()
    session.update(kept)
    token = accounts.start_login_session(
        db, user, policy, remember=remember, user_agent=request.headers.get("User-Agent", "")
    )
    device = accounts.remember_device(db, user, policy, device_token())
    login_user(user, remember=remember)  # the remember cookie lasts REMEMBER_COOKIE_DURATION
    session["_user_id"] = token  # what the session and the remember cookie carry

    @after_this_request
    def keep_device(response):  # type: ignore[no-untyped-def]
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=policy.device_days * 86400,
            path=DEVICE_COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
        return response


def end_login() -> None:
    """Log out on this browser: the server-side session ends (so do copies of its cookies), the
    remember cookie is deleted, and the session keeps only the language."""
    token = session.get("_user_id")
    if token:
        accounts.end_login_session(get_session(), str(token))
    lang = session.get("lang")
    session.clear()
    logout_user()  # marks the remember cookie for deletion
    if lang:
        session["lang"] = lang
