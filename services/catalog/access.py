"""Whose listings an actor may make and change: their own, a consenting farmer's (an agent), any
(an admin)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from domain import ListingConsent, Product, SellerProfile, User
from services import authz
from services.errors import Conflict, Forbidden
from services.i18n import _

from .common import SELLER_ROLES, is_int
from .consents import active_consent
from .sellers import get_seller_profile


def can_edit_product(session: Session, actor: User | None, product: Product) -> bool:
    """Whether the actor may change the listing: its seller, an agent with consent, an admin."""
    if actor is None:
        return False
    if actor.id == product.seller_id or authz.is_admin(actor):
        return True
    return active_consent(session, actor, product.seller_id) is not None


def require_editor(session: Session, actor: User | None, product: Product) -> User:
    """The actor, if they may change the listing (its seller, an agent with consent, an admin)."""
    actor = authz.require_user(actor)
    if not can_edit_product(session, actor, product):
        raise Forbidden(_("You cannot change this product."))
    return actor


def seller_for(
    session: Session, actor: User, seller_id: int | None
) -> tuple[SellerProfile, ListingConsent | None]:
    """Whose listing this is: the actor's own, or a farmer's the agent has consent for."""
    if seller_id is None or seller_id == actor.id:
        if not any(actor.has_role(r) for r in SELLER_ROLES) and not authz.is_admin(actor):
            raise Forbidden(_("Only farmers and merchants can sell."))
        profile = session.get(SellerProfile, actor.id)
        if profile is None:
            raise Conflict(_("Fill in your seller profile first."))
        return profile, None
    consent = active_consent(session, actor, seller_id)
    if consent is None and not authz.is_admin(actor):
        raise Forbidden(_("You may only list for farmers who gave their consent at your service point."))
    return get_seller_profile(session, seller_id), consent


@dataclass(frozen=True)
class SellingAs:
    """Whose listings a page shows: the actor's own, or a farmer's the agent acts for."""

    seller: User
    profile: SellerProfile | None  # None: the actor has not filled in their seller profile yet
    consent: ListingConsent | None  # set when an agent acts for the farmer

    @property
    def for_farmer(self) -> bool:
        return self.consent is not None


def selling_as(session: Session, actor: User | None, seller_id: int | None = None) -> SellingAs:
    """The seller a "my listings" or "new listing" page acts for, after checking the right to."""
    actor = authz.require_user(actor)
    if seller_id is None or seller_id == actor.id:
        if not any(actor.has_role(r) for r in SELLER_ROLES):
            raise Forbidden(_("Only farmers and merchants can sell."))
        return SellingAs(seller=actor, profile=session.get(SellerProfile, actor.id), consent=None)
    consent = active_consent(session, actor, seller_id) if is_int(seller_id) else None
    if consent is None:
        raise Forbidden(_("You may only list for farmers who gave their consent at your service point."))
    return SellingAs(seller=consent.farmer, profile=get_seller_profile(session, seller_id), consent=consent)
