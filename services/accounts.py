"""Accounts: registration and password reset by SMS code, login, roles with scopes, API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from domain import (
    ROLE_SCOPE,
    ApiToken,
    AuditEvent,
    Division,
    DivisionLevel,
    Node,
    NodeKind,
    Role,
    RoleGrant,
    SmsCode,
    SmsPurpose,
    User,
    clock,
)
from services import authz
from services.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, ValidationError
from services.i18n import _
from services.sms import SmsGateway
from services.validation import check_password, check_text, normalize_phone

# Roles anyone may take for themselves when registering; the rest are granted by staff.
SELF_SERVICE_ROLES = (Role.BUYER, Role.FARMER, Role.MERCHANT)

# A hash that costs as much to check as a real one, for logins with an unknown phone number,
# so response time does not tell which numbers are registered.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


@dataclass(frozen=True)
class AuthPolicy:
    """Limits for codes, logins and tokens (from configuration)."""

    code_ttl_seconds: int = 300
    code_max_attempts: int = 5
    codes_per_phone_per_hour: int = 5
    code_resend_seconds: int = 60
    login_max_failures: int = 5
    login_lock_seconds: int = 900
    token_ttl_days: int = 90


def _now(now: datetime | None) -> datetime:
    return now or clock.now()


def _code_hash(phone: str, purpose: SmsPurpose, code: str) -> str:
    return hashlib.sha256(f"{phone}:{purpose.value}:{code}".encode()).hexdigest()


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def find_user_by_phone(session: Session, phone: str) -> User | None:
    return session.scalar(select(User).where(User.phone == phone))


def load_login_user(session: Session, login_id: str) -> User | None:
    """The user behind a session's login id "<id>:<auth_version>", if still valid."""
    try:
        user_id, version = (int(x) for x in login_id.split(":", 1))
    except ValueError:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.auth_version != version:
        return None
    return user


# --- SMS verification codes -------------------------------------------------------------


def request_sms_code(
    session: Session,
    gateway: SmsGateway,
    phone: str,
    purpose: SmsPurpose,
    policy: AuthPolicy,
    *,
    now: datetime | None = None,
    ip: str = "",
) -> None:
    """Send a 6-digit code to the phone, within the per-phone rate limits."""
    now = _now(now)
    phone = normalize_phone(phone)
    existing = find_user_by_phone(session, phone)
    if purpose == SmsPurpose.REGISTER and existing is not None:
        msg = _("This mobile number is already registered. Please log in.")
        raise Conflict(msg, field_errors={"phone": [msg]})

    recent = session.scalars(
        select(SmsCode.created_at)
        .where(SmsCode.phone == phone, SmsCode.created_at > now - timedelta(hours=1))
        .order_by(SmsCode.created_at.desc())
    ).all()
    if len(recent) >= policy.codes_per_phone_per_hour:
        raise RateLimited(_("Too many codes were sent to this number. Please try again in an hour."))
    if recent and (now - recent[0]).total_seconds() < policy.code_resend_seconds:
        wait = policy.code_resend_seconds - int((now - recent[0]).total_seconds())
        raise RateLimited(_("Please wait %(n)d seconds before asking for another code.", n=wait))

    if purpose == SmsPurpose.RESET_PASSWORD and existing is None:
        # Say nothing that tells a stranger whether the number has an account; record the
        # request so the rate limit still counts it, but send nothing.
        session.add(
            SmsCode(
                phone=phone,
                purpose=purpose,
                code_hash="-",
                created_at=now,
                expires_at=now,
                consumed_at=now,
                requester_ip=ip,
            )
        )
        session.commit()
        return

    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        SmsCode(
            phone=phone,
            purpose=purpose,
            code_hash=_code_hash(phone, purpose, code),
            created_at=now,
            expires_at=now + timedelta(seconds=policy.code_ttl_seconds),
            requester_ip=ip,
        )
    )
    minutes = max(1, policy.code_ttl_seconds // 60)
    # SMS text goes out in Chinese: the recipient may not have chosen a language yet.
    if purpose == SmsPurpose.LISTING_CONSENT:
        # Read out to the village agent by a farmer who agrees to have them list for them.
        text = (
            f"【粤农通】验证码{code}：村级服务点申请代您上架和管理农产品。"
            f"同意才把验证码告诉服务点工作人员，{minutes}分钟内有效。"
        )
    else:
        text = f"【粤农通】您的验证码是{code}，{minutes}分钟内有效。请勿告诉他人。"
    gateway.send(phone, text)
    session.commit()


def consume_sms_code(
    session: Session,
    phone: str,
    purpose: SmsPurpose,
    code: str,
    policy: AuthPolicy,
    now: datetime,
) -> None:
    """Check and use up the newest live code; a wrong guess counts against it (committed)."""
    invalid = _("The verification code is wrong or has expired. Request a new one.")
    live = session.scalar(
        select(SmsCode)
        .where(
            SmsCode.phone == phone,
            SmsCode.purpose == purpose,
            SmsCode.consumed_at.is_(None),
            SmsCode.expires_at > now,
        )
        .order_by(SmsCode.created_at.desc(), SmsCode.id.desc())
        .limit(1)
        .with_for_update()
    )
    code = (code or "").strip()
    if live is None or live.attempts >= policy.code_max_attempts:
        raise ValidationError(invalid, field_errors={"code": [invalid]})
    if not hmac.compare_digest(live.code_hash, _code_hash(phone, purpose, code)):
        live.attempts += 1
        session.commit()
        raise ValidationError(invalid, field_errors={"code": [invalid]})
    live.consumed_at = now


# --- registration, login, password reset ------------------------------------------------


def register(
    session: Session,
    *,
    phone: str,
    code: str,
    password: str,
    display_name: str = "",
    roles: tuple[Role, ...] = (Role.BUYER,),
    locale: str | None = None,
    policy: AuthPolicy,
    now: datetime | None = None,
) -> User:
    """Create an account after the SMS code proves the phone is the registrant's."""
    now = _now(now)
    phone = normalize_phone(phone)
    password = check_password(password)
    display_name = check_text(display_name, "display_name", max_len=40)
    roles = tuple(dict.fromkeys(roles)) or (Role.BUYER,)
    if any(r not in SELF_SERVICE_ROLES for r in roles):
        raise Forbidden(_("This role is granted by platform staff."))
    if find_user_by_phone(session, phone) is not None:
        msg = _("This mobile number is already registered. Please log in.")
        raise Conflict(msg, field_errors={"phone": [msg]})
    consume_sms_code(session, phone, SmsPurpose.REGISTER, code, policy, now)
    user = User(
        phone=phone,
        password_hash=generate_password_hash(password),
        display_name=display_name,
        locale=locale,
        phone_verified_at=now,
        created_at=now,
    )
    user.grants = [RoleGrant(role=r, created_at=now) for r in roles]
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Two registrations for one number raced; the other one won.
        session.rollback()
        msg = _("This mobile number is already registered. Please log in.")
        raise Conflict(msg, field_errors={"phone": [msg]}) from None
    return user


def create_user(
    session: Session,
    *,
    phone: str,
    password: str,
    display_name: str = "",
    roles: tuple[Role, ...] = (Role.BUYER,),
    verified: bool = True,
    now: datetime | None = None,
) -> User:
    """Create an account without an SMS round trip: seed data and admin tools only."""
    now = _now(now)
    phone = normalize_phone(phone)
    check_password(password)
    if find_user_by_phone(session, phone) is not None:
        raise Conflict(_("This mobile number is already registered. Please log in."))
    user = User(
        phone=phone,
        password_hash=generate_password_hash(password),
        display_name=check_text(display_name, "display_name", max_len=40),
        phone_verified_at=now if verified else None,
        created_at=now,
    )
    user.grants = [RoleGrant(role=r, created_at=now) for r in roles if ROLE_SCOPE[r] is None]
    session.add(user)
    session.commit()
    return user


def authenticate(
    session: Session,
    phone: str,
    password: str,
    policy: AuthPolicy,
    *,
    now: datetime | None = None,
) -> User:
    """The user with this phone and password; locks the account after repeated failures."""
    now = _now(now)
    failed = _("Wrong mobile number or password.")
    try:
        phone = normalize_phone(phone)
    except ValidationError:
        raise Unauthorized(failed) from None
    user = session.scalar(select(User).where(User.phone == phone).with_for_update())
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        raise Unauthorized(failed)
    if user.locked_until is not None and user.locked_until > now:
        minutes = int((user.locked_until - now).total_seconds() // 60) + 1
        raise RateLimited(
            _("Too many wrong passwords. Try again in %(n)d minutes or reset your password.", n=minutes)
        )
    if not check_password_hash(user.password_hash, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= policy.login_max_failures:
            user.locked_until = now + timedelta(seconds=policy.login_lock_seconds)
            user.failed_logins = 0
        session.commit()
        raise Unauthorized(failed)
    if not user.is_active:
        session.rollback()
        raise Forbidden(_("This account has been disabled."))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.commit()
    return user


def reset_password(
    session: Session,
    *,
    phone: str,
    code: str,
    new_password: str,
    policy: AuthPolicy,
    now: datetime | None = None,
) -> User:
    """Set a new password after an SMS code; every other session and API token ends."""
    now = _now(now)
    phone = normalize_phone(phone)
    new_password = check_password(new_password)
    user = find_user_by_phone(session, phone)
    if user is None:
        invalid = _("The verification code is wrong or has expired. Request a new one.")
        raise ValidationError(invalid, field_errors={"code": [invalid]})
    consume_sms_code(session, phone, SmsPurpose.RESET_PASSWORD, code, policy, now)
    user.password_hash = generate_password_hash(new_password)
    user.auth_version += 1
    user.failed_logins = 0
    user.locked_until = None
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
    session.commit()
    return user


def update_profile(session: Session, user: User | None, *, display_name: str, locale: str | None) -> User:
    """Change one's own display name and preferred language."""
    user = authz.require_user(user)
    display_name = check_text(display_name, "display_name", max_len=40)
    if locale not in (None, "", "zh_Hans_CN", "en"):
        raise ValidationError(_("Unknown language."), field_errors={"locale": [_("Unknown language.")]})
    user.display_name = display_name
    user.locale = locale or None
    session.commit()
    return user


# --- roles and scopes ---------------------------------------------------------------------


def grantable_roles(actor: User | None) -> list[Role]:
    """The roles an actor may hand out: any for admins, village agents for county staff."""
    if authz.is_admin(actor):
        return list(Role)
    if authz.staff_county_codes(actor):
        return [Role.AGENT]
    return []


def grant_role(
    session: Session,
    actor: User | None,
    *,
    user_id: int,
    role: Role,
    node_id: int | None = None,
    county_code: str | None = None,
    now: datetime | None = None,
) -> RoleGrant:
    """Give a user a role, with the scope the role needs.

    Admins grant anything. County staff appoint agents for village points in their county.
    """
    actor = authz.require_staff(actor)
    # Who may grant this role at all comes first: a refusal must not depend on the input.
    if role not in grantable_roles(actor):
        raise Forbidden()
    user = get_user(session, user_id)
    scope = ROLE_SCOPE[role]
    node: Node | None = None
    if scope == "node":
        wanted = NodeKind.VILLAGE_POINT if role == Role.AGENT else NodeKind.DISTRIBUTION_CENTER
        node = session.get(Node, node_id) if node_id is not None else None
        if node is None or node.kind != wanted:
            msg = (
                _("Choose the village service point for this agent.")
                if role == Role.AGENT
                else _("Choose the distribution center for this role.")
            )
            raise ValidationError(msg, field_errors={"node_id": [msg]})
        county_code = None
    elif scope == "county":
        division = session.get(Division, county_code) if county_code else None
        if division is None or division.level != DivisionLevel.COUNTY:
            msg = _("Choose the county for this role.")
            raise ValidationError(msg, field_errors={"county_code": [msg]})
        node_id = None
    else:
        node_id = county_code = None

    in_own_county = node is not None and node.county_code in authz.staff_county_codes(actor)
    if not (authz.is_admin(actor) or in_own_county):
        raise Forbidden()

    existing = session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == role,
            RoleGrant.node_id.is_(None) if node_id is None else RoleGrant.node_id == node_id,
            RoleGrant.county_code.is_(None) if county_code is None else RoleGrant.county_code == county_code,
        )
    )
    if existing is not None:
        return existing  # granting twice is a repeat, not an error
    grant = RoleGrant(
        user_id=user.id,
        role=role,
        node_id=node_id,
        county_code=county_code,
        granted_by_id=actor.id,
        created_at=_now(now),
    )
    session.add(grant)
    session.flush()
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action="grant_role",
            entity_type="user",
            entity_id=str(user.id),
            changes={"role": role.value, "node_id": node_id, "county_code": county_code},
        )
    )
    session.commit()
    return grant


def can_revoke(actor: User | None, grant: RoleGrant) -> bool:
    """Admins take away any role; county staff the agents of their county's village points."""
    if authz.is_admin(actor):
        return True
    return (
        grant.role == Role.AGENT
        and grant.node is not None
        and grant.node.county_code in authz.staff_county_codes(actor)
    )


def revoke_role(session: Session, actor: User | None, grant_id: int, *, user_id: int | None = None) -> None:
    """Take a role away. `user_id`, when given, must be the grant's holder."""
    actor = authz.require_staff(actor)
    grant = session.get(RoleGrant, grant_id)
    if grant is None or (user_id is not None and grant.user_id != user_id):
        raise NotFound()
    if not can_revoke(actor, grant):
        raise Forbidden()
    if grant.role == Role.ADMIN and grant.user_id == actor.id:
        raise Conflict(_("You cannot remove your own administrator role."))
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action="revoke_role",
            entity_type="user",
            entity_id=str(grant.user_id),
            changes={"role": grant.role.value, "node_id": grant.node_id, "county_code": grant.county_code},
        )
    )
    session.delete(grant)
    session.commit()


def list_users(
    session: Session, actor: User | None, *, phone_prefix: str = "", limit: int = 50
) -> list[User]:
    """Users for the role-management page, newest first: admins and county staff only."""
    authz.require_staff(actor)
    stmt = select(User).order_by(User.id.desc()).limit(limit)
    prefix = unicodedata.normalize("NFKC", phone_prefix or "")  # full-width digits too
    digits = "".join(c for c in prefix if c in "0123456789")[:11]
    if digits:
        stmt = stmt.where(User.phone.startswith(digits, autoescape=True))
    return list(session.scalars(stmt))


# --- API tokens -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(
    session: Session,
    *,
    phone: str,
    password: str,
    name: str = "",
    policy: AuthPolicy,
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Log in with phone and password and get a bearer token (shown once)."""
    now = _now(now)
    name = check_text(name, "name", max_len=64)  # before logging in: bad input writes nothing
    user = authenticate(session, phone, password, policy, now=now)
    secret = "gdm_" + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_token_hash(secret),
        created_at=now,
        expires_at=now + timedelta(days=policy.token_ttl_days),
    )
    session.add(token)
    session.commit()
    return secret, token


def authenticate_token(session: Session, secret: str, *, now: datetime | None = None) -> User | None:
    """The user a bearer token belongs to, or None if unknown, expired or revoked."""
    now = _now(now)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute: no write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.commit()
    return token.user


def revoke_api_token(session: Session, secret: str, *, now: datetime | None = None) -> None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is not None and token.revoked_at is None:
        token.revoked_at = _now(now)
        session.commit()


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def purge_expired_codes(session: Session, *, now: datetime | None = None, keep_hours: int = 24) -> int:
    """Delete codes older than `keep_hours` (they no longer count for rate limits)."""
    cutoff = _now(now) - timedelta(hours=keep_hours)
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(SmsCode).where(SmsCode.created_at < cutoff)
    )
    session.commit()
    return result.rowcount or 0


__all__ = [
    "SELF_SERVICE_ROLES",
    "AuthPolicy",
    "authenticate",
    "authenticate_token",
    "can_revoke",
    "count_users",
    "create_user",
    "find_user_by_phone",
    "get_user",
    "grant_role",
    "grantable_roles",
    "issue_api_token",
    "list_users",
    "load_login_user",
    "purge_expired_codes",
    "register",
    "request_sms_code",
    "reset_password",
    "revoke_api_token",
    "revoke_role",
    "update_profile",
]
