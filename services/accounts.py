"""Accounts: registration and password reset by SMS code, login, roles with scopes, API tokens.

Logins as a bank would run them:

- Wrong passwords are counted per mobile number (a keyed hash of it, in `LoginThrottle`), whether
  or not the number has an account, so every number gets the same answers at the same count.
  After `login_max_failures` the number backs off: each further attempt waits twice as long as
  the one before (from `login_backoff_seconds`, capped at `login_lock_seconds`). Nobody is locked
  out for good, and a password reset ends the wait.
- A device the account has logged in from before (`KnownDevice`, a random token in a long-lived
  cookie or an app's storage) is let in with the right password during that wait, and its own
  typos slow down only itself.
- Each login is a server-side `LoginSession`; the cookies carry only its random token. Logout and
  a password reset revoke it, so a copied cookie stops working; a remembered session ends after
  `remember_days`, another after `session_hours` unused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, CursorResult, bindparam, delete, func, or_, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from domain import (
    ROLE_SCOPE,
    ApiToken,
    AuditEvent,
    Division,
    DivisionLevel,
    KnownDevice,
    ListingConsent,
    LoginSession,
    LoginThrottle,
    Node,
    NodeKind,
    Role,
    RoleGrant,
    SellerProfile,
    SmsCode,
    SmsPurpose,
    User,
    clock,
)
from services import authz, rows
from services.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, ValidationError
from services.i18n import _
from services.sms import SmsGateway
from services.validation import check_password, check_text, normalize_phone

# Roles anyone may take for themselves when registering; the rest are granted by staff.
SELF_SERVICE_ROLES = (Role.BUYER, Role.FARMER, Role.MERCHANT)

# The codes anyone may ask for (the web pages and the public API). A listing-consent code is sent
# only when a village agent enrols a farmer (services.catalog.consents).
PUBLIC_SMS_PURPOSES = (SmsPurpose.REGISTER, SmsPurpose.RESET_PASSWORD)

# Tokens longer than this are not ours: refused before hashing.
_MAX_TOKEN_LENGTH = 128

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
    # Wrong passwords a number may have before it backs off; the first wait, doubled at each
    # further failure up to `login_lock_seconds`; failures older than the window are forgotten.
    login_max_failures: int = 5
    login_lock_seconds: int = 900
    login_backoff_seconds: int = 60
    login_failure_window_hours: int = 24
    token_ttl_days: int = 90
    # Login sessions: a remembered one ends this many days after login (the remember cookie's
    # lifetime), another after this many hours unused. Known devices are forgotten when unused.
    remember_days: int = 30
    session_hours: int = 12
    device_days: int = 180
    # The key of the hash under which failures per number are kept (the app's secret key).
    throttle_key: str = field(default="", repr=False)


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
    """Send a 6-digit code to the phone, within the per-phone limits of this purpose.

    The caller sees the same outcome whether or not the number has an account: a registered
    number asking to register is texted that it has one (no code), an unknown number asking for
    a reset is texted nothing. Each purpose has its own quota, so register or consent texts never
    use up the ones a real password reset needs.
    """
    now = _now(now)
    phone = normalize_phone(phone)
    existing = find_user_by_phone(session, phone)

    recent = session.scalars(
        select(SmsCode.created_at)
        .where(
            SmsCode.phone == phone,
            SmsCode.purpose == purpose,
            SmsCode.created_at > now - timedelta(hours=1),
        )
        .order_by(SmsCode.created_at.desc())
    ).all()
    if len(recent) >= policy.codes_per_phone_per_hour:
        raise RateLimited(_("Too many codes were sent to this number. Please try again in an hour."))
    if recent and (now - recent[0]).total_seconds() < policy.code_resend_seconds:
        wait = policy.code_resend_seconds - int((now - recent[0]).total_seconds())
        raise RateLimited(_("Please wait %(n)d seconds before asking for another code.", n=wait))

    no_code = (purpose == SmsPurpose.RESET_PASSWORD and existing is None) or (
        purpose == SmsPurpose.REGISTER and existing is not None
    )
    if no_code:
        # Recorded like a code (so the limits count it) but no code exists to be used.
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
        if existing is not None:
            # The owner (or someone typing their number) learns the number has an account, in
            # the text only: the page and the API answer as for any number.
            gateway.send(
                phone,
                "【粤农通】您的手机号已注册粤农通账号，请直接登录；忘记密码可在登录页点"
                "“忘记密码”用短信验证码重设。如非本人操作，请忽略本短信。",
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
    if purpose == SmsPurpose.VILLAGER_CONSENT:
        # Read out to the village agent by a villager (or their family) who agrees to be
        # registered at the point, so the agent can shop for them.
        text = (
            f"【粤农通】验证码{code}：村级服务点申请登记您的信息并为您代购商品。"
            f"同意才把验证码告诉服务点工作人员，{minutes}分钟内有效。"
        )
    elif purpose == SmsPurpose.LISTING_CONSENT:
        # Read out to the village agent by a farmer who agrees to have them list for them.
        text = (
            f"【粤农通】验证码{code}：村级服务点申请代您上架和管理农产品。"
            f"同意才把验证码告诉服务点工作人员，{minutes}分钟内有效。"
        )
    else:
        text = f"【粤农通】您的验证码是{code}，{minutes}分钟内有效。请勿告诉他人。"
    gateway.send(phone, text)
    session.commit()


def request_code_for_someone(
    session: Session,
    gateway: SmsGateway,
    agent: User | None,
    phone: str,
    purpose: SmsPurpose,
    policy: AuthPolicy,
    *,
    own_number: Any,
    ip: str = "",
    now: datetime | None = None,
) -> str:
    """A village agent has a consent code sent to someone else's phone (a farmer's, a
    villager's), who reads it out to them; returns the number. `own_number`: the message when
    the agent typed their own."""
    agent = authz.require_user(agent)
    if not authz.node_ids(agent, Role.AGENT):
        raise Forbidden(_("Only village agents can do this."))
    phone = normalize_phone(phone)
    if phone == agent.phone:
        raise ValidationError(own_number, field_errors={"phone": [own_number]})
    request_sms_code(session, gateway, phone, purpose, policy, now=now, ip=ip)
    return phone


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
    # The code first: a registered number never got one, so without it the answer is the same
    # "wrong code" as for any number. Only a number registered after its code was sent gets here.
    consume_sms_code(session, phone, SmsPurpose.REGISTER, code, policy, now)
    if find_user_by_phone(session, phone) is not None:
        session.commit()  # the code is used up either way
        msg = _("This mobile number is already registered. Please log in.")
        raise Conflict(msg, field_errors={"phone": [msg]})
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
        session.flush()
        # Villagers an agent registered with this phone and name become this account's
        # (linked, not duplicated). Imported here: services.villagers imports this module.
        from services.villagers import link_on_register

        link_on_register(session, user)
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


def _throttle_key(phone: str, policy: AuthPolicy) -> str:
    return hmac.new(policy.throttle_key.encode(), f"login:{phone}".encode(), hashlib.sha256).hexdigest()


def _backoff_until(failures: int, now: datetime, policy: AuthPolicy) -> datetime | None:
    """When the next attempt may come after `failures` wrong passwords in a row (None: now)."""
    over = failures - policy.login_max_failures
    if over < 0:
        return None
    wait = policy.login_backoff_seconds * 2 ** min(over, 30)
    return now + timedelta(seconds=min(wait, policy.login_lock_seconds))


def _forget_old_failures(row: LoginThrottle | KnownDevice, now: datetime, policy: AuthPolicy) -> None:
    window = timedelta(hours=policy.login_failure_window_hours)
    if row.last_failed_at is not None and row.last_failed_at <= now - window:
        row.failures = 0
        row.blocked_until = None


def _known_device(
    session: Session, user: User | None, device_token: str, now: datetime, policy: AuthPolicy
) -> KnownDevice | None:
    """The user's known device holding this token, locked for the attempt; None if not one."""
    if user is None or not device_token or len(device_token) > _MAX_TOKEN_LENGTH:
        return None
    return session.scalar(
        select(KnownDevice)
        .where(
            KnownDevice.user_id == user.id,
            KnownDevice.token_hash == _token_hash(device_token),
            KnownDevice.last_used_at > now - timedelta(days=policy.device_days),
        )
        .with_for_update()
    )


def _phone_throttle(session: Session, key: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())


def _count_failure(
    session: Session, key: str, row: LoginThrottle | KnownDevice | None, now: datetime, policy: AuthPolicy
) -> None:
    if row is None:
        row = LoginThrottle(key=key, failures=0, last_failed_at=now)
        try:
            with session.begin_nested():  # two first failures at once: one inserts, one counts
                session.add(row)
        except IntegrityError:
            row = _phone_throttle(session, key)
            assert row is not None
    row.failures += 1
    row.last_failed_at = now
    row.blocked_until = _backoff_until(row.failures, now, policy)


def authenticate(
    session: Session,
    phone: str,
    password: str,
    policy: AuthPolicy,
    *,
    now: datetime | None = None,
    device_token: str = "",
) -> User:
    """The user with this phone and password.

    Wrong passwords make the number back off (the same for every number, registered or not);
    `device_token`, from a device the account has logged in from before, gets the owner in with
    the right password meanwhile, and its own wrong passwords slow down only that device.
    """
    now = _now(now)
    failed = _("Wrong mobile number or password.")
    try:
        phone = normalize_phone(phone)
    except ValidationError:
        raise Unauthorized(failed) from None
    user = session.scalar(select(User).where(User.phone == phone))
    # The hash is always checked, for unknown numbers against a dummy: the time taken tells nothing.
    right = check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password or "")
    right = right and user is not None

    key = _throttle_key(phone, policy)
    device = _known_device(session, user, device_token, now, policy)
    row: LoginThrottle | KnownDevice | None = device if device is not None else _phone_throttle(session, key)
    if row is not None:
        _forget_old_failures(row, now, policy)
        if row.blocked_until is not None and row.blocked_until > now:
            minutes = -(-int((row.blocked_until - now).total_seconds()) // 60)  # rounded up
            session.rollback()
            raise RateLimited(
                _("Too many wrong passwords. Try again in %(n)d min or reset your password.", n=minutes)
            )
    if not right:
        _count_failure(session, key, row, now, policy)
        session.commit()
        raise Unauthorized(failed)
    assert user is not None
    if not user.is_active:
        session.rollback()
        raise Forbidden(_("This account has been disabled."))
    if device is not None:
        device.failures = 0
        device.blocked_until = None
        device.last_used_at = now
    elif row is not None:
        session.delete(row)
    user.last_login_at = now
    session.commit()
    return user


def remember_device(
    session: Session, user: User, policy: AuthPolicy, device_token: str = "", *, now: datetime | None = None
) -> str:
    """Make the device known to the user after a login; the token for it to keep.

    A device keeps one token for every account used on it. A token this service did not hand
    out (none, made up, or planted by someone else) is replaced by a new random one.
    """
    now = _now(now)
    token_hash = _token_hash(device_token) if 0 < len(device_token or "") <= _MAX_TOKEN_LENGTH else ""
    issued = token_hash and session.scalar(
        select(KnownDevice.id).where(KnownDevice.token_hash == token_hash).limit(1)
    )
    if not issued:
        device_token = secrets.token_urlsafe(32)
        token_hash = _token_hash(device_token)
    known = session.scalar(
        select(KnownDevice).where(KnownDevice.user_id == user.id, KnownDevice.token_hash == token_hash)
    )
    if known is None:
        session.add(KnownDevice(user_id=user.id, token_hash=token_hash, created_at=now, last_used_at=now))
    else:
        known.last_used_at = now
    session.commit()
    return device_token


# --- login sessions -------------------------------------------------------------------------------


def start_login_session(
    session: Session,
    user: User,
    policy: AuthPolicy,
    *,
    remember: bool = False,
    user_agent: str = "",
    now: datetime | None = None,
) -> str:
    """A new server-side session for a user who just proved who they are; its token (shown once)."""
    now = _now(now)
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=policy.remember_days) if remember else timedelta(hours=policy.session_hours)
    session.add(
        LoginSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            remember=remember,
            user_agent=(user_agent or "")[:200],
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    session.commit()
    return token


def _live_session(session: Session, token: str, now: datetime) -> LoginSession | None:
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def load_session_user(
    session: Session, token: str, policy: AuthPolicy, *, now: datetime | None = None
) -> User | None:
    """The user of a live login session, or None (unknown, ended, expired, or the user disabled)."""
    now = _now(now)
    row = _live_session(session, token, now)
    if row is None or not row.user.is_active:
        return None
    # Written at most once a minute, not on every request.
    if (now - row.last_seen_at).total_seconds() > 60:
        row.last_seen_at = now
        if not row.remember:
            # Unused for `session_hours` it ends; while used, at most as long as a remembered one.
            row.expires_at = min(
                now + timedelta(hours=policy.session_hours),
                row.created_at + timedelta(days=policy.remember_days),
            )
        session.commit()
    return row.user


def end_login_session(session: Session, token: str, *, now: datetime | None = None) -> None:
    """Log out: the session's cookies, wherever they were copied to, stop working."""
    now = _now(now)
    row = _live_session(session, token, now)
    if row is not None:
        row.revoked_at = now
        session.commit()


def end_all_sessions(session: Session, user: User, *, now: datetime | None = None) -> None:
    """Revoke every login session and API token of the user (no commit: the caller's change)."""
    now = _now(now)
    for login in session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
    ):
        login.revoked_at = now
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now


def reset_password(
    session: Session,
    *,
    phone: str,
    code: str,
    new_password: str,
    policy: AuthPolicy,
    now: datetime | None = None,
) -> User:
    """Set a new password after an SMS code; every session and API token ends (the page that
    asked starts a new one), the number's back-off and the known devices are cleared."""
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
    end_all_sessions(session, user, now=now)
    # The number no longer backs off; the devices known before must log in anew to be known again
    # (one of them may be why the password was changed).
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _throttle_key(phone, policy)))
    session.execute(delete(KnownDevice).where(KnownDevice.user_id == user.id))
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
    if grant.role == Role.AGENT and grant.node_id is not None:
        # The farmers' consents were given to the agent of that point: they end with the role.
        session.execute(
            update(ListingConsent)
            .where(
                ListingConsent.agent_id == grant.user_id,
                ListingConsent.point_id == grant.node_id,
                ListingConsent.revoked_at.is_(None),
            )
            .values(revoked_at=clock.now())
        )
    session.delete(grant)
    session.commit()


def _county_user_ids(counties: set[str]) -> CompoundSelect:
    """Users of these counties: roles scoped to them or to a node there, sellers homed there."""
    return union(
        select(RoleGrant.user_id).where(RoleGrant.county_code.in_(counties)),
        select(RoleGrant.user_id)
        .join(Node, Node.id == RoleGrant.node_id)
        .where(Node.county_code.in_(counties)),
        select(SellerProfile.user_id).where(SellerProfile.county_code.in_(counties)),
    )


def _tied_user_ids() -> CompoundSelect:
    """Users who belong to some county (any county): a scoped role or a seller profile."""
    return union(
        select(RoleGrant.user_id).where(
            or_(RoleGrant.county_code.is_not(None), RoleGrant.node_id.is_not(None))
        ),
        select(SellerProfile.user_id),
    )


def list_users(session: Session, actor: User | None, *, phone: str = "", limit: int = 50) -> list[User]:
    """Users for the role-management page, newest first: admins and county staff only.

    Admins see everyone. County staff see the users of their county (roles there, sellers homed
    there), and, to appoint a new agent, someone tied to no county at all when they type the full
    number. Searching takes the full 11-digit number only (a part is a form error): masked
    numbers cannot be read back digit by digit.
    """
    actor = authz.require_staff(actor)
    number = normalize_phone(phone) if (phone or "").strip() else ""
    stmt = select(User).order_by(User.id.desc()).limit(max(1, min(limit, 200)))
    if number:
        stmt = stmt.where(User.phone == number)
    if not authz.is_admin(actor):
        ours = User.id.in_(_county_user_ids(authz.staff_county_codes(actor)))
        stmt = stmt.where(or_(ours, User.id.not_in(_tied_user_ids())) if number else ours)
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
    device_token: str = "",
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Log in with phone and password and get a bearer token (shown once)."""
    now = _now(now)
    name = check_text(name, "name", max_len=64)  # before logging in: bad input writes nothing
    user = authenticate(session, phone, password, policy, now=now, device_token=device_token)
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
    # The user's role grants come in the same statement: most API calls ask about a role (who
    # may see or move an order), and a lazy load would be a statement of its own.
    token = session.execute(_TOKEN, {"token_hash": _token_hash(secret)}).unique().scalar_one_or_none()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute: no write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # A statement built once, not the unit of work, sent with its COMMIT in one round trip
        # (rows.run_in_turn): the first API request of each minute pays for it (every buyer of
        # a flash sale's crowd, say), and a flush of one attribute cost twice the UPDATE itself.
        rows.run_in_turn(session, [(_TOUCH, {"token_id": token.id, "now": now})], commit=True)
        set_committed_value(token, "last_used_at", now)
    return token.user


# Built once: every API request asks it (building the statement and its loader options cost
# about as much as running it).
_TOKEN = (
    select(ApiToken)
    .where(ApiToken.token_hash == bindparam("token_hash"))
    .options(
        joinedload(ApiToken.user).options(
            joinedload(User.grants).options(lazyload(RoleGrant.node), lazyload(RoleGrant.county)),
            # Paying asks for it (services.payments.gateway_customer): one join, not a transaction.
            joinedload(User.gateway_customer),
        )
    )
)


_TOUCH = (
    update(rows.table(ApiToken))
    .where(rows.table(ApiToken).c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now"))
)


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


def purge_expired_logins(session: Session, policy: AuthPolicy, *, now: datetime | None = None) -> int:
    """Delete ended and expired login sessions, forgotten failures and devices unused for
    `device_days`; how many rows went. Idempotent: meant for a periodic job."""
    now = _now(now)
    window = timedelta(hours=policy.login_failure_window_hours)
    statements = [
        delete(LoginSession).where(or_(LoginSession.revoked_at.is_not(None), LoginSession.expires_at <= now)),
        delete(LoginThrottle).where(
            LoginThrottle.last_failed_at <= now - window,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        ),
        delete(KnownDevice).where(KnownDevice.last_used_at <= now - timedelta(days=policy.device_days)),
    ]
    removed = 0
    for statement in statements:
        result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
        removed += result.rowcount or 0
    session.commit()
    return removed


__all__ = [
    "PUBLIC_SMS_PURPOSES",
    "SELF_SERVICE_ROLES",
    "AuthPolicy",
    "authenticate",
    "authenticate_token",
    "can_revoke",
    "count_users",
    "create_user",
    "end_all_sessions",
    "end_login_session",
    "find_user_by_phone",
    "get_user",
    "grant_role",
    "grantable_roles",
    "issue_api_token",
    "list_users",
    "load_session_user",
    "purge_expired_codes",
    "purge_expired_logins",
    "register",
    "remember_device",
    "request_sms_code",
    "reset_password",
    "revoke_api_token",
    "revoke_role",
    "start_login_session",
    "update_profile",
]
