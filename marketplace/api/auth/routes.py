"""Accounts API: tokens, SMS codes, registration, the current user, users and roles."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_babel import get_locale
from flask_smorest import Blueprint

from marketplace.api.auth.schemas import (
    GrantRequestSchema,
    MeSchema,
    PasswordResetSchema,
    RegisterSchema,
    RoleGrantSchema,
    SmsCodeRequestSchema,
    TokenRequestSchema,
    TokenSchema,
    UserQuerySchema,
    UserSummarySchema,
    public_purpose,
)
from marketplace.api.common import BEARER
from marketplace.auth import actor, auth_policy, client_ip
from marketplace.db import get_session
from marketplace.extensions import limiter
from marketplace.gateways import sms_gateway
from services import accounts, authz
from services.errors import Unauthorized

blp = Blueprint("api_auth", __name__, description="Accounts and API tokens")

# The same scopes as the log-in and registration pages: one budget per IP across web and API.
LOGIN_LIMIT_SCOPE = "login"
SMS_LIMIT_SCOPE = "sms-codes"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _sms_limit() -> str:
    return current_app.config["SMS_RATE_LIMIT"]


def _bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""


@blp.route("/auth/sms-codes", methods=["POST"])
@limiter.shared_limit(_sms_limit, SMS_LIMIT_SCOPE)
@blp.arguments(SmsCodeRequestSchema)
@blp.response(
    202,
    description="Accepted, the same for every number: a code is on its way if the number may use one "
    "(register: a registered number is texted that it has an account; reset_password: an unknown "
    "number is texted nothing)",
)
@blp.alt_response(429, description="Too many codes of this purpose for this number, or from this address")
def request_sms_code(args: dict[str, Any]) -> Response:
    """Send a 6-digit verification code by SMS, for registration or password reset."""
    accounts.request_sms_code(
        get_session(),
        sms_gateway(),
        args["phone"],
        public_purpose(args["purpose"]),
        auth_policy(),
        ip=client_ip(),
    )
    return current_app.response_class(status=202)  # no body: the same answer for every number


@blp.route("/auth/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, MeSchema)
@blp.alt_response(409, description="The number was registered after this code was sent")
def register(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Create an account with the code sent to the phone. Log in afterwards with POST /auth/tokens."""
    return accounts.register(
        get_session(),
        phone=args["phone"],
        code=args["code"],
        password=args["password"],
        display_name=args["display_name"],
        roles=tuple(args["roles"]),
        locale=args["locale"] or str(get_locale() or "") or None,
        policy=auth_policy(),
    )


@blp.route("/auth/tokens", methods=["POST"])
@limiter.shared_limit(_login_limit, LOGIN_LIMIT_SCOPE)
@blp.arguments(TokenRequestSchema)
@blp.response(201, TokenSchema)
@blp.alt_response(401, description="Wrong mobile number or password")
@blp.alt_response(
    429,
    description="Too many attempts: the number backs off for a while (the same for every number), "
    "or this address does",
)
def create_token(args: dict[str, Any]) -> dict[str, Any]:
    """Log in with phone and password; the bearer token in the answer is shown only once."""
    db = get_session()
    policy = auth_policy()
    secret, token = accounts.issue_api_token(
        db,
        phone=args["phone"],
        password=args["password"],
        name=args["name"],
        policy=policy,
        device_token=args["device_token"],
    )
    device = accounts.remember_device(db, token.user, policy, args["device_token"])
    return {"token": secret, "expires_at": token.expires_at, "device_token": device}


@blp.route("/auth/tokens/current", methods=["DELETE"])
@blp.doc(security=BEARER)
@blp.response(204)
@blp.alt_response(401, description="No valid bearer token")
def delete_current_token() -> None:
    """Log out: revoke the bearer token this request was made with."""
    secret = _bearer_secret()
    if actor() is None or not secret:
        raise Unauthorized()
    accounts.revoke_api_token(get_session(), secret)


@blp.route("/auth/password-reset", methods=["POST"])
@blp.arguments(PasswordResetSchema)
@blp.response(204)
def reset_password(args: dict[str, Any]) -> None:
    """Set a new password with a reset_password code; every session and token of the account ends."""
    accounts.reset_password(
        get_session(),
        phone=args["phone"],
        code=args["code"],
        new_password=args["new_password"],
        policy=auth_policy(),
    )


@blp.route("/me", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, MeSchema)
@blp.alt_response(401, description="No valid bearer token")
def me():  # type: ignore[no-untyped-def]
    """The caller's own account, with the phone number in full and every role with its scope."""
    return authz.require_user(actor())


@blp.route("/users", methods=["GET"])
@blp.doc(security=BEARER)
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserSummarySchema(many=True))
@blp.alt_response(403, description="Admins and county staff only")
def list_users(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Users and their roles (at most 50), phone numbers masked.

    Admins see everyone; county staff the users of their county (and, by the whole number,
    someone tied to no county, to appoint them)."""
    return accounts.list_users(get_session(), actor(), phone=args["phone"])


@blp.route("/users/<int:user_id>/roles", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(GrantRequestSchema)
@blp.response(201, RoleGrantSchema)
@blp.alt_response(403, description="Admins grant any role; county staff appoint agents in their county")
def grant_role(args: dict[str, Any], user_id: int):  # type: ignore[no-untyped-def]
    """Give a user a role; agent and dc_staff need node_id, county_staff needs county_code."""
    return accounts.grant_role(
        get_session(),
        actor(),
        user_id=user_id,
        role=args["role"],
        node_id=args["node_id"],
        county_code=args["county_code"],
    )


@blp.route("/users/<int:user_id>/roles/<int:grant_id>", methods=["DELETE"])
@blp.doc(security=BEARER)
@blp.response(204)
@blp.alt_response(403, description="Admins revoke any role; county staff the agents of their county")
def revoke_role(user_id: int, grant_id: int) -> None:
    """Take a role away from a user."""
    accounts.revoke_role(get_session(), actor(), grant_id, user_id=user_id)
