"""Seller profiles: a farmer's village (and its service point), a merchant's shop."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from domain import Division, DivisionLevel, Role, SellerKind, SellerProfile, User
from services import authz, places
from services.errors import Forbidden, NotFound, ServiceError, ValidationError
from services.i18n import _
from services.validation import check_text

from . import audit
from .common import SELLER_ROLES, field_error


def seller_name(seller: User, shop_name: str | None) -> str:
    """What a seller is called: their shop's name, or their own name while they have none."""
    return shop_name or seller.display_name or ""


def get_seller_profile(session: Session, user_id: int) -> SellerProfile:
    """A seller's profile; NotFound when the user has none."""
    profile = session.get(SellerProfile, user_id)
    if profile is None:
        raise NotFound(_("This seller does not exist."))
    return profile


def save_seller_profile(
    session: Session,
    actor: User | None,
    *,
    shop_name: str,
    division_code: str,
    intro: str = "",
    kind: SellerKind | None = None,
) -> SellerProfile:
    """Create or change the actor's own seller profile (farmers: their village)."""
    actor = authz.require_user(actor)
    if not any(actor.has_role(r) for r in SELLER_ROLES):
        raise Forbidden(_("Only farmers and merchants can sell."))
    kind = kind or (SellerKind.FARMER if actor.has_role(Role.FARMER) else SellerKind.MERCHANT)
    try:
        kind = SellerKind(kind)
    except ValueError:
        raise field_error("kind", _("Choose from the list.")) from None
    existing = session.get(SellerProfile, actor.id)
    profile = existing or SellerProfile(user_id=actor.id, kind=kind)
    before = _profile_snapshot(profile) if existing is not None else {}
    try:
        profile.kind = kind
        apply_profile(session, profile, shop_name=shop_name, division_code=division_code, intro=intro)
    except ServiceError:
        session.rollback()  # the half-changed profile must not be flushed by a later commit
        raise
    session.add(profile)
    changes = audit.diff(before, _profile_snapshot(profile))
    if changes:
        audit.record(session, actor, "save_profile", "seller_profile", actor.id, changes)
    session.commit()
    return profile


def _profile_snapshot(profile: SellerProfile) -> dict[str, Any]:
    return {
        "kind": profile.kind.value if profile.kind else None,
        "shop_name": profile.shop_name,
        "division_code": profile.division_code,
        "intro": profile.intro,
    }


def apply_profile(
    session: Session, profile: SellerProfile, *, shop_name: str, division_code: str, intro: str
) -> None:
    """Check and set a profile's name, intro and place (farmers: a village, and its service point)."""
    errors: dict[str, list[Any]] = {}
    try:
        profile.shop_name = check_text(shop_name, "shop_name", max_len=60, required=True)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    try:
        profile.intro = check_text(intro, "intro", max_len=500)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    division = session.get(Division, (division_code or "").strip()) if division_code else None
    needs_village = profile.kind in (SellerKind.FARMER, SellerKind.COOPERATIVE)
    if division is None or (needs_village and division.level != DivisionLevel.VILLAGE):
        errors["division_code"] = [_("Choose your village from the list.")]
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    assert division is not None
    profile.division_code = division.code
    profile.county_code = division.code[:6] if len(division.code) >= 6 else None
    if division.level == DivisionLevel.VILLAGE:
        point = places.village_point_of(session, division.code)
        profile.home_point_id = point.id if point is not None else None
