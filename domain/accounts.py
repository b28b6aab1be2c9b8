"""Accounts: users, their roles with scopes, SMS codes and outbox, API tokens, login sessions,
known devices and login back-off, audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum

if TYPE_CHECKING:
    from .payments import GatewayCustomer


class Role(enum.StrEnum):
    BUYER = "buyer"
    FARMER = "farmer"
    AGENT = "agent"
    COUNTY_STAFF = "county_staff"
    DC_STAFF = "dc_staff"
    MERCHANT = "merchant"
    ADMIN = "admin"


# Which scope each role needs: an agent runs a village point, county staff work for a county,
# DC staff for a distribution center. The others act on their own behalf or province-wide.
ROLE_SCOPE = {
    Role.AGENT: "node",
    Role.DC_STAFF: "node",
    Role.COUNTY_STAFF: "county",
    Role.BUYER: None,
    Role.FARMER: None,
    Role.MERCHANT: None,
    Role.ADMIN: None,
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(40), default="")
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped when the password changes (the sessions and tokens of before are revoked then too).
    auth_version: Mapped[int] = mapped_column(default=1)

    # Loaded when a role is asked about: most requests (a buyer's checkout, a seller shown on a
    # page) never do.
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="RoleGrant.id",
        foreign_keys="RoleGrant.user_id",
    )
    # The buyer's Customer at the payment gateway, once made (services.payments.gateway_customer
    # writes the row). Read-only here; an API request's token read loads it with the user, so
    # paying needs no statement of its own for it.
    gateway_customer: Mapped[GatewayCustomer | None] = relationship(
        "GatewayCustomer", lazy="select", viewonly=True, uselist=False
    )

    @property
    def roles(self) -> set[Role]:
        return {g.role for g in self.grants}

    def has_role(self, role: Role) -> bool:
        return any(g.role == role for g in self.grants)

    # The interface Flask-Login expects, without importing it into the model layer.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        # Flask-Login stores this at login; marketplace.auth replaces it at once with the id of
        # the server-side LoginSession, the only thing a session or remember cookie carries.
        return f"{self.id}:{self.auth_version}"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class RoleGrant(Base):
    """One role held by a user, with its scope where the role has one."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "node_id", "county_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True, default=None)
    county_code: Mapped[str | None] = mapped_column(ForeignKey("divisions.code"), index=True, default=None)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    user: Mapped[User] = relationship(back_populates="grants", foreign_keys=[user_id])
    node = relationship("Node", lazy="joined")
    county = relationship("Division", lazy="joined")


class SmsPurpose(enum.StrEnum):
    REGISTER = "register"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)
    # A farmer without a smartphone reads this code out to the agent who enrolls them.
    LISTING_CONSENT = "listing_consent"
    # A villager (or their family, on a shared phone) reads this code out to the village agent
    # who registers them.
    VILLAGER_CONSENT = "villager_consent"


class SmsCode(Base):
    """A one-time verification code sent by SMS. Only its hash is stored."""

    __tablename__ = "sms_codes"
    __table_args__ = (Index("ix_sms_codes_phone_created", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(11))
    purpose: Mapped[SmsPurpose] = mapped_column(str_enum(SmsPurpose))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    requester_ip: Mapped[str] = mapped_column(String(64), default="")


class SmsMessage(Base):
    """The outbox of the default SMS gateway: what would have been sent, shown on /dev/sms."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ApiToken(Base):
    """A bearer token for API clients. The secret is shown once; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class LoginSession(Base):
    """One logged-in browser. Its cookie (Flask's session and the remember cookie) carries a
    random token; only the token's SHA-256 is kept. Ended by logout, a password reset or time."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # "Stay logged in": a remember cookie of its own lifetime; otherwise the session ends when
    # unused for a while.
    remember: Mapped[bool] = mapped_column(default=False)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class KnownDevice(Base):
    """A browser or app the user has logged in from: the owner's usual phone is let in with the
    right password while strangers typing wrong ones back off. Only the token's SHA-256 is kept;
    one browser shared by two accounts is known to both."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_used_at: Mapped[datetime] = mapped_column(default=clock.now)
    # The device's own back-off: typos on it never slow down the account's other devices.
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(default=None)
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Wrong passwords typed for one mobile number, registered or not, from unknown devices.

    Keyed by a keyed hash of the number (HMAC), so the table lists no numbers and every number
    gets the same answers at the same count."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)


class AuditEvent(Base):
    """Who changed what, when: every write through a service that edits shared data."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
