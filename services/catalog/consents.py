"""Village agents acting for farmers (托管代运营): enrolling a farmer by the SMS code they read
out, the consent record that lets the agent list for them, and ending it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    Division,
    DivisionLevel,
    ListingConsent,
    Node,
    Role,
    RoleGrant,
    SellerKind,
    SellerProfile,
    SmsPurpose,
    User,
    clock,
)
from services import authz
from services.accounts import AuthPolicy, consume_sms_code, find_user_by_phone, request_code_for_someone
from services.errors import Forbidden, NotFound, ValidationError
from services.i18n import _
from services.sms import SmsGateway
from services.validation import check_text, normalize_phone

from . import audit
from .sellers import apply_profile


def agent_point_ids(actor: User | None) -> set[int]:
    """The village points the actor runs as an agent."""
    return authz.node_ids(actor, Role.AGENT)


def _agent_point(session: Session, actor: User, point_id: int | None) -> Node:
    """The village point the agent acts from (their only one, or the one they chose)."""
    points = agent_point_ids(actor)
    if not points:
        raise Forbidden(_("Only village agents can do this."))
    if point_id is None:
        if len(points) > 1:
            raise ValidationError(_("Choose the service point you act for."))
        (point_id,) = points
    if point_id not in points:
        raise Forbidden()
    point = session.get(Node, point_id)
    assert point is not None
    return point


def enroll_farmer(
    session: Session,
    actor: User | None,
    *,
    phone: str,
    code: str,
    display_name: str,
    village_code: str,
    point_id: int | None = None,
    policy: AuthPolicy,
    now: datetime | None = None,
) -> ListingConsent:
    """An agent signs up a farmer of their village (or an existing one) and records the farmer's
    consent to list for them. The farmer proves it by reading out the SMS code sent to their phone.
    """
    actor = authz.require_user(actor)
    point = _agent_point(session, actor, point_id)
    phone = normalize_phone(phone)
    now = now or clock.now()
    errors: dict[str, list[Any]] = {}
    if phone == actor.phone:
        errors["phone"] = [_("Enter the farmer's mobile number, not your own.")]
    village = session.get(Division, (village_code or "").strip()) if village_code else None
    # An agent serves the villages of their own town: the point's village and its neighbours.
    if (
        village is None
        or village.level != DivisionLevel.VILLAGE
        or village.code[:9] != point.division_code[:9]
    ):
        errors["village_code"] = [_("Choose a village served by your service point.")]
    try:
        display_name = check_text(display_name, "display_name", max_len=40, required=True)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    assert village is not None
    farmer = find_user_by_phone(session, phone)
    existing_profile = session.get(SellerProfile, farmer.id) if farmer is not None else None
    if existing_profile is not None and existing_profile.division_code[:9] != point.division_code[:9]:
        raise Forbidden(_("This farmer lives outside the area of your service point."))
    # A wrong code is counted (and committed) by consume_sms_code; nothing else is written.
    consume_sms_code(session, phone, SmsPurpose.LISTING_CONSENT, code, policy, now)
    try:
        if farmer is None:
            # No password: the farmer can set one later with "forgot password" on a smartphone.
            farmer = User(
                phone=phone,
                password_hash="!",  # noqa: S106 (matches no password: no login until a reset)
                display_name=display_name,
                phone_verified_at=now,
                created_at=now,
            )
            session.add(farmer)
            session.flush()
        if not farmer.has_role(Role.FARMER):
            farmer.grants.append(RoleGrant(role=Role.FARMER, granted_by_id=actor.id, created_at=now))
        if existing_profile is None:
            profile = SellerProfile(user_id=farmer.id, kind=SellerKind.FARMER)
            apply_profile(session, profile, shop_name=display_name, division_code=village.code, intro="")
            session.add(profile)
        consent = session.scalar(
            select(ListingConsent).where(
                ListingConsent.farmer_id == farmer.id,
                ListingConsent.agent_id == actor.id,
                ListingConsent.revoked_at.is_(None),
            )
        )
        if consent is None or consent.point_id != point.id:
            if consent is not None:
                consent.revoked_at = now  # given at another of the agent's points: replaced
            consent = ListingConsent(
                farmer_id=farmer.id, agent_id=actor.id, point_id=point.id, granted_at=now
            )
            session.add(consent)
        session.flush()
        audit.record(
            session,
            actor,
            "enroll_farmer",
            "user",
            farmer.id,
            {"point_id": point.id, "consent_id": consent.id},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return consent


def request_consent_code(
    session: Session,
    gateway: SmsGateway,
    actor: User | None,
    phone: str,
    policy: AuthPolicy,
    *,
    ip: str = "",
    now: datetime | None = None,
) -> str:
    """An agent asks for the consent code to be sent to a farmer's phone; returns the number."""
    return request_code_for_someone(
        session,
        gateway,
        actor,
        phone,
        SmsPurpose.LISTING_CONSENT,
        policy,
        own_number=_("Enter the farmer's mobile number, not your own."),
        ip=ip,
        now=now,
    )


def active_consent(session: Session, agent: User | None, farmer_id: int) -> ListingConsent | None:
    """The agent's consent to list for the farmer, while it still holds; None otherwise."""
    points = agent_point_ids(agent)
    if agent is None or not points:  # not an agent (anywhere): no query
        return None
    consent = session.scalar(
        select(ListingConsent).where(
            ListingConsent.farmer_id == farmer_id,
            ListingConsent.agent_id == agent.id,
            ListingConsent.revoked_at.is_(None),
        )
    )
    # The consent holds while the agent still runs the point it was given at, for a farmer who
    # still lives in that point's town.
    if consent is None or consent.point_id not in points:
        return None
    profile = session.get(SellerProfile, farmer_id)
    if profile is None or profile.division_code[:9] != consent.point.division_code[:9]:
        return None
    return consent


def farmers_of_agent(session: Session, actor: User | None) -> list[ListingConsent]:
    """The farmers an agent may list for, with their consent records."""
    actor = authz.require_user(actor)
    points = agent_point_ids(actor)
    if not points:
        raise Forbidden(_("Only village agents can do this."))
    consents = session.scalars(
        select(ListingConsent)
        .where(
            ListingConsent.agent_id == actor.id,
            ListingConsent.revoked_at.is_(None),
            ListingConsent.point_id.in_(points),
        )
        .order_by(ListingConsent.id)
    )
    return [c for c in consents if active_consent(session, actor, c.farmer_id) is not None]


def consents_of_farmer(session: Session, actor: User | None) -> list[ListingConsent]:
    """The agents who may list for the actor (a farmer), to see and end on the profile page."""
    actor = authz.require_user(actor)
    return list(
        session.scalars(
            select(ListingConsent)
            .where(ListingConsent.farmer_id == actor.id, ListingConsent.revoked_at.is_(None))
            .order_by(ListingConsent.id)
        )
    )


def revoke_consent(
    session: Session, actor: User | None, consent_id: int, *, now: datetime | None = None
) -> None:
    """The farmer (or an admin, or the agent) ends the agent's right to list for the farmer."""
    actor = authz.require_user(actor)
    consent = session.get(ListingConsent, consent_id)
    if consent is None:
        raise NotFound()
    if actor.id not in (consent.farmer_id, consent.agent_id) and not authz.is_admin(actor):
        raise Forbidden()
    if consent.revoked_at is None:
        consent.revoked_at = now or clock.now()
        audit.record(session, actor, "revoke_consent", "user", consent.farmer_id, {"consent_id": consent.id})
        session.commit()
