"""The catalog's use cases: seller profiles, agents enrolling farmers under a consent record,
and listings (create, edit, one-tap price and stock, pause and resume), each change audited."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    MAX_PRICE_FEN,
    MAX_STOCK,
    AuditEvent,
    Category,
    CategoryFlow,
    Certification,
    CertificationKind,
    Division,
    DivisionLevel,
    ListingConsent,
    Node,
    NodeKind,
    Product,
    ProductStatus,
    Role,
    RoleGrant,
    SellerKind,
    SellerProfile,
    SmsPurpose,
    StorageClass,
    Unit,
    User,
    clock,
)
from services import authz, search
from services.accounts import AuthPolicy, consume_sms_code, find_user_by_phone, request_sms_code
from services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationError
from services.i18n import _
from services.places import HistoryEntry, PickerLevel, list_divisions
from services.sms import SmsGateway
from services.validation import check_text, normalize_phone

SELLER_ROLES = (Role.FARMER, Role.MERCHANT)
# Net weight of one unit when the unit says it: a 斤 is 500 g, a 公斤 1000 g.
UNIT_WEIGHT_G = {Unit.JIN: 500, Unit.KG: 1000}
MAX_NET_WEIGHT_G = 1_000_000  # one tonne in one unit of sale: above that it is a typo
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2100, 12, 31)
# What a seller may move a listing between with one tap (sold_out is set by stock reaching 0).
STATUS_MOVES = {
    ProductStatus.DRAFT: {ProductStatus.ACTIVE},
    ProductStatus.ACTIVE: {ProductStatus.PAUSED},
    ProductStatus.PAUSED: {ProductStatus.ACTIVE},
    ProductStatus.SOLD_OUT: {ProductStatus.PAUSED, ProductStatus.ACTIVE},
}


def _field_error(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


def _is_int(value: Any) -> TypeGuard[int]:
    """A real integer: JSON's true/false are ints to Python, but not prices or stocks."""
    return isinstance(value, int) and not isinstance(value, bool)


# --- sellers ----------------------------------------------------------------------------------


def get_seller_profile(session: Session, user_id: int) -> SellerProfile:
    profile = session.get(SellerProfile, user_id)
    if profile is None:
        raise NotFound(_("This seller does not exist."))
    return profile


def _village_point_of(session: Session, village_code: str) -> Node | None:
    return session.scalar(
        select(Node)
        .where(Node.kind == NodeKind.VILLAGE_POINT, Node.division_code == village_code, Node.active.is_(True))
        .order_by(Node.id)
        .limit(1)
    )


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
        raise _field_error("kind", _("Choose from the list.")) from None
    existing = session.get(SellerProfile, actor.id)
    profile = existing or SellerProfile(user_id=actor.id, kind=kind)
    before = _profile_snapshot(profile) if existing is not None else {}
    try:
        profile.kind = kind
        _apply_profile(session, profile, shop_name=shop_name, division_code=division_code, intro=intro)
    except ServiceError:
        session.rollback()  # the half-changed profile must not be flushed by a later commit
        raise
    session.add(profile)
    changes = _diff(before, _profile_snapshot(profile))
    if changes:
        _audit(session, actor, "save_profile", "seller_profile", actor.id, changes)
    session.commit()
    return profile


def _profile_snapshot(profile: SellerProfile) -> dict[str, Any]:
    return {
        "kind": profile.kind.value if profile.kind else None,
        "shop_name": profile.shop_name,
        "division_code": profile.division_code,
        "intro": profile.intro,
    }


def _apply_profile(
    session: Session, profile: SellerProfile, *, shop_name: str, division_code: str, intro: str
) -> None:
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
        point = _village_point_of(session, division.code)
        profile.home_point_id = point.id if point is not None else None


# --- agents acting for farmers (托管代运营) ------------------------------------------------------


def agent_point_ids(actor: User | None) -> set[int]:
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
            _apply_profile(session, profile, shop_name=display_name, division_code=village.code, intro="")
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
        _audit(
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
    actor = authz.require_user(actor)
    if not agent_point_ids(actor):
        raise Forbidden(_("Only village agents can do this."))
    phone = normalize_phone(phone)
    if phone == actor.phone:
        raise _field_error("phone", _("Enter the farmer's mobile number, not your own."))
    request_sms_code(session, gateway, phone, SmsPurpose.LISTING_CONSENT, policy, now=now, ip=ip)
    return phone


@dataclass(frozen=True)
class EnrollmentVillages:
    """The villages an agent may enroll farmers from, per service point (the point's town)."""

    point: Node
    villages: list[Division]


def enrollment_villages(session: Session, actor: User | None) -> list[EnrollmentVillages]:
    actor = authz.require_user(actor)
    points = sorted(agent_point_ids(actor))
    if not points:
        raise Forbidden(_("Only village agents can do this."))
    result = []
    for point_id in points:
        point = session.get(Node, point_id)
        if point is None or not point.active:
            continue
        villages = list_divisions(session, parent_code=point.division_code[:9])
        # The point's own village first: most farmers an agent enrolls live there.
        villages.sort(key=lambda d: (d.code != point.division_code, d.code))
        result.append(EnrollmentVillages(point=point, villages=villages))
    return result


def active_consent(session: Session, agent: User | None, farmer_id: int) -> ListingConsent | None:
    if agent is None:
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
    if consent is None or consent.point_id not in agent_point_ids(agent):
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
        _audit(session, actor, "revoke_consent", "user", consent.farmer_id, {"consent_id": consent.id})
        session.commit()


# --- listings ---------------------------------------------------------------------------------


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id) if 0 < product_id < 2**31 else None
    if product is None:
        raise NotFound(_("This product does not exist."))
    return product


def get_public_product(session: Session, product_id: int) -> Product:
    """A product buyers may see: active, paused-but-visible excluded, sold out shown as such."""
    product = get_product(session, product_id)
    if product.status not in (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT):
        raise NotFound(_("This product does not exist."))
    return product


def visible_product(session: Session, actor: User | None, product_id: int) -> Product:
    """A listing as the asker may see it: on sale or sold out for anyone, any status for those
    who may change it (a draft or a paused listing is "not found" to everyone else)."""
    product = get_product(session, product_id)
    if product.status in (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT):
        return product
    if can_edit_product(session, actor, product):
        return product
    raise NotFound(_("This product does not exist."))


def can_edit_product(session: Session, actor: User | None, product: Product) -> bool:
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


_require_edit = require_editor


@dataclass(frozen=True)
class ListingInput:
    """A listing's fields as the services take them (forms and API schemas build this)."""

    name: str
    category_id: int
    unit: Unit
    price_fen: int
    stock: int
    description: str = ""
    net_weight_g: int | None = None
    storage_class: StorageClass = StorageClass.AMBIENT
    origin_code: str | None = None
    harvest_start: date | None = None
    harvest_end: date | None = None
    presale: bool = False
    ships_from: date | None = None
    certifications: tuple[tuple[CertificationKind, str], ...] = ()


def _check_listing(session: Session, data: ListingInput, seller: SellerProfile) -> dict[str, Any]:
    """Validate every field, collecting all errors; returns the clean column values."""
    errors: dict[str, list[Any]] = {}
    clean: dict[str, Any] = {}

    def attempt(field: str, fn: Any) -> None:
        try:
            clean[field] = fn()
        except ValidationError as exc:
            errors.update(exc.field_errors or {field: [exc.message]})

    attempt("name", lambda: check_text(data.name, "name", max_len=60, required=True))
    attempt("description", lambda: check_text(data.description, "description", max_len=2000))

    category = (
        session.get(Category, data.category_id)
        if _is_int(data.category_id) and 0 < data.category_id < 2**31
        else None
    )
    if category is None or category.parent_id is None:
        errors["category_id"] = [_("Choose a category from the list.")]
    else:
        clean["category_id"] = category.id

    def money() -> int:
        if not _is_int(data.price_fen) or not 0 < data.price_fen <= MAX_PRICE_FEN:
            raise _field_error("price_fen", _("Enter a price between ¥0.01 and ¥100,000."))
        return data.price_fen

    def stock() -> int:
        if not _is_int(data.stock) or not 0 <= data.stock <= MAX_STOCK:
            raise _field_error("stock", _("Enter a stock between 0 and 1,000,000."))
        return data.stock

    def weight() -> int:
        fixed = UNIT_WEIGHT_G.get(data.unit)
        if fixed is not None:
            return fixed
        if not _is_int(data.net_weight_g) or not 0 < data.net_weight_g <= MAX_NET_WEIGHT_G:
            raise _field_error("net_weight_g", _("Enter the net weight of one unit in grams."))
        return data.net_weight_g

    attempt("price_fen", money)
    attempt("stock", stock)
    attempt("net_weight_g", weight)
    try:
        clean["unit"] = Unit(data.unit)
    except ValueError:
        errors["unit"] = [_("Choose a unit from the list.")]
    try:
        clean["storage_class"] = StorageClass(data.storage_class)
    except ValueError:
        errors["storage_class"] = [_("Choose a storage class from the list.")]

    origin_code = data.origin_code or seller.division_code
    origin = session.get(Division, origin_code) if isinstance(origin_code, str) else None
    if origin is None or origin.level == DivisionLevel.PROVINCE:
        errors["origin_code"] = [_("Choose where it comes from.")]
    else:
        clean["origin_code"] = origin.code
        clean["county_code"] = origin.code[:6] if len(origin.code) >= 6 else seller.county_code or origin.code

    if data.harvest_start and data.harvest_end and data.harvest_end < data.harvest_start:
        errors["harvest_end"] = [_("The harvest cannot end before it starts.")]
    clean["harvest_start"], clean["harvest_end"] = data.harvest_start, data.harvest_end
    for field in ("harvest_start", "harvest_end", "ships_from"):
        value = getattr(data, field)
        if value is not None and not (isinstance(value, date) and MIN_DATE <= value <= MAX_DATE):
            errors[field] = [_("Enter a date between 2000 and 2100.")]
    if data.presale and data.ships_from is None:
        errors["ships_from"] = [_("A pre-sale needs the date it ships from.")]
    clean["presale"], clean["ships_from"] = bool(data.presale), data.ships_from if data.presale else None

    certs: dict[CertificationKind, str] = {}
    for kind, number in data.certifications:
        try:
            cert_kind = CertificationKind(kind)
        except ValueError:
            errors["certifications"] = [_("Choose a certification from the list.")]
            continue
        try:
            certs[cert_kind] = check_text(number, "certifications", max_len=64, required=True)
        except ValidationError as exc:
            message = exc.field_errors["certifications"][0]
            if not (number or "").strip():
                message = _("Each certification needs its certificate number.")
            errors["certifications"] = [message]
    clean["certifications"] = certs
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return clean


def _seller_for(
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


def create_product(
    session: Session,
    actor: User | None,
    data: ListingInput,
    *,
    seller_id: int | None = None,
    publish: bool = True,
    idempotency_key: str | None = None,
) -> Product:
    """List a product (for oneself, or as an agent for a consenting farmer).

    A repeated request with the same idempotency key returns the product the first one made.
    """
    actor = authz.require_user(actor)
    profile, consent = _seller_for(session, actor, seller_id)
    key = (idempotency_key or "").strip()[:64] or None
    if key:
        existing = session.scalar(
            select(Product).where(Product.seller_id == profile.user_id, Product.idempotency_key == key)
        )
        if existing is not None:
            return existing
    clean = _check_listing(session, data, profile)
    certs = clean.pop("certifications")
    now = clock.now()
    product = Product(
        seller_id=profile.user_id,
        listed_by_id=actor.id,
        consent_id=consent.id if consent else None,
        idempotency_key=key,
        status=ProductStatus.ACTIVE if publish else ProductStatus.DRAFT,
        published_at=now if publish else None,
        created_at=now,
        **clean,
    )
    if publish and product.stock == 0 and not product.presale:
        product.status = ProductStatus.SOLD_OUT
    product.certifications = [Certification(kind=k, number=n) for k, n in certs.items()]
    session.add(product)
    try:
        session.flush()
    except IntegrityError:
        # The same key raced in from a retried request: return the winner.
        session.rollback()
        existing = session.scalar(
            select(Product).where(Product.seller_id == profile.user_id, Product.idempotency_key == key)
        )
        if existing is None:
            raise
        return existing
    search.index_product(session, product)
    _audit(session, actor, "create", "product", product.id, _snapshot(product))
    session.commit()
    return product


def update_product(session: Session, actor: User | None, product_id: int, data: ListingInput) -> Product:
    """Change a listing's details (the seller of record stays the same)."""
    product = get_product(session, product_id)
    actor = _require_edit(session, actor, product)
    profile = get_seller_profile(session, product.seller_id)
    clean = _check_listing(session, data, profile)
    certs = clean.pop("certifications")
    before = _snapshot(product)
    for key, value in clean.items():
        setattr(product, key, value)
    # A changed number is changed in place: a new row for the same kind would collide with the
    # old one (unique per product and kind) before the old one is deleted.
    current = {c.kind: c for c in product.certifications}
    kept: list[Certification] = []
    for kind, number in certs.items():
        cert = current.get(kind) or Certification(kind=kind, number=number)
        cert.number = number
        kept.append(cert)
    product.certifications = kept
    _after_stock_change(product)
    changes = _diff(before, _snapshot(product))
    if changes:
        session.flush()
        search.index_product(session, product)
        _audit(session, actor, "update", "product", product.id, changes)
    session.commit()
    return product


def set_price_and_stock(
    session: Session,
    actor: User | None,
    product_id: int,
    *,
    price_fen: int | None = None,
    stock: int | None = None,
) -> Product:
    """The one-tap change from "my listings": absolute values, so a repeated tap changes nothing."""
    product = get_product(session, product_id)
    actor = _require_edit(session, actor, product)
    errors: dict[str, list[Any]] = {}
    if price_fen is not None and (not _is_int(price_fen) or not 0 < price_fen <= MAX_PRICE_FEN):
        errors["price_fen"] = [_("Enter a price between ¥0.01 and ¥100,000.")]
    if stock is not None and (not _is_int(stock) or not 0 <= stock <= MAX_STOCK):
        errors["stock"] = [_("Enter a stock between 0 and 1,000,000.")]
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    before = _snapshot(product)
    if price_fen is not None:
        product.price_fen = price_fen
    if stock is not None:
        product.stock = stock
    _after_stock_change(product)
    changes = _diff(before, _snapshot(product))
    if changes:
        _audit(session, actor, "update", "product", product.id, changes)
    session.commit()
    return product


def set_status(session: Session, actor: User | None, product_id: int, status: ProductStatus) -> Product:
    """Publish, pause or resume a listing."""
    product = get_product(session, product_id)
    actor = _require_edit(session, actor, product)
    try:
        status = ProductStatus(status)
    except ValueError:
        raise _field_error("status", _("Unknown status.")) from None
    if status == product.status:
        return product  # a repeated tap
    if status not in STATUS_MOVES[product.status]:
        raise Conflict(_("This listing cannot be changed that way now."))
    if status == ProductStatus.ACTIVE and product.stock == 0 and not product.presale:
        raise _field_error("stock", _("Add stock before putting the listing on sale."))
    before = product.status
    product.status = status
    if status == ProductStatus.ACTIVE and product.published_at is None:
        product.published_at = clock.now()
    session.flush()
    search.index_product(session, product)
    _audit(session, actor, "status", "product", product.id, {"status": [before.value, status.value]})
    session.commit()
    return product


def _after_stock_change(product: Product) -> None:
    """Sold out when stock reaches 0 (pre-sales sell against the announced harvest instead)."""
    if product.presale:
        return
    if product.status == ProductStatus.ACTIVE and product.stock == 0:
        product.status = ProductStatus.SOLD_OUT
    elif product.status == ProductStatus.SOLD_OUT and product.stock > 0:
        product.status = ProductStatus.ACTIVE


def listings_of(session: Session, actor: User | None, *, seller_id: int | None = None) -> list[Product]:
    """ "My listings": the actor's own, or a consenting farmer's for an agent; newest first."""
    actor = authz.require_user(actor)
    owner = seller_id or actor.id
    if owner != actor.id and active_consent(session, actor, owner) is None and not authz.is_admin(actor):
        raise Forbidden()
    return list(
        session.scalars(select(Product).where(Product.seller_id == owner).order_by(Product.id.desc()))
    )


def product_history(session: Session, actor: User | None, product_id: int) -> list[AuditEvent]:
    product = get_product(session, product_id)
    _require_edit(session, actor, product)
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "product", AuditEvent.entity_id == str(product.id))
            .order_by(AuditEvent.id.desc())
            .limit(50)
        )
    )


def categories(session: Session) -> list[Category]:
    """The whole category tree, parents before children, in display order."""
    return list(
        session.scalars(
            select(Category).order_by(Category.parent_id.is_not(None), Category.position, Category.id)
        )
    )


def category_groups(
    session: Session, flow: CategoryFlow | None = None
) -> list[tuple[Category, list[Category]]]:
    """Top categories with the categories a listing can be in, for a grouped picker.

    With a flow (farm produce for farmers, goods for merchants), that flow's groups come first."""
    tree = categories(session)
    groups = [(top, [c for c in tree if c.parent_id == top.id]) for top in tree if top.parent_id is None]
    groups = [(top, children) for top, children in groups if children]
    if flow is not None:
        groups.sort(key=lambda g: g[0].flow != flow)
    return groups


def flow_of(kind: SellerKind | None) -> CategoryFlow:
    """What a seller mostly lists: farm produce, or (merchants) goods for the villages."""
    return CategoryFlow.GOODS if kind == SellerKind.MERCHANT else CategoryFlow.FARM


# --- whose listings (the seller, or an agent for a consenting farmer) --------------------------


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
    consent = active_consent(session, actor, seller_id) if _is_int(seller_id) else None
    if consent is None:
        raise Forbidden(_("You may only list for farmers who gave their consent at your service point."))
    return SellingAs(seller=consent.farmer, profile=get_seller_profile(session, seller_id), consent=consent)


# --- text input as the pages take it (exact: Decimal, never float) ------------------------------

_NUMBER_RE = re.compile(r"^[0-9]{1,9}(?:\.[0-9]+)?$", re.ASCII)
WEIGHT_UNITS_G = {"jin": 500, "kg": 1000, "g": 1}


def _plain_number(raw: str | None) -> str:
    """Full-width digits (１２．５), currency signs, unit words and thousands separators removed."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    for junk in ("¥", "元", ",", " ", "RMB", "rmb"):
        text = text.replace(junk, "")
    return text.replace("。", ".")


def parse_yuan(raw: str | None, field: str = "price_fen") -> int:
    """A price typed in yuan ("12.5", "１２.５０", "¥12") as integer fen."""
    text = _plain_number(raw)
    if text.startswith("-") and _NUMBER_RE.match(text[1:]):
        raise _field_error(field, _("Enter a price between ¥0.01 and ¥100,000."))
    if not _NUMBER_RE.match(text) or len(text.partition(".")[2]) > 2:
        raise _field_error(field, _("Enter the price in yuan, such as 12.50."))
    fen = int(Decimal(text) * 100)
    if not 0 < fen <= MAX_PRICE_FEN:
        raise _field_error(field, _("Enter a price between ¥0.01 and ¥100,000."))
    return fen


def parse_count(raw: str | None, field: str = "stock") -> int:
    """A stock typed as a whole number."""
    text = _plain_number(raw)
    if text.startswith("-") and text[1:].isdigit():
        raise _field_error(field, _("Enter a stock between 0 and 1,000,000."))
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        raise _field_error(field, _("Enter a whole number, such as 100."))
    count = int(text)
    if count > MAX_STOCK:
        raise _field_error(field, _("Enter a stock between 0 and 1,000,000."))
    return count


def parse_weight_g(raw: str | None, unit: str, field: str = "net_weight_g") -> int | None:
    """A net weight typed in 斤, kg or g as whole grams; None when left empty."""
    text = _plain_number(raw)
    if not text:
        return None
    factor = WEIGHT_UNITS_G.get(unit)
    try:
        grams = Decimal(text) * factor if factor and _NUMBER_RE.match(text) else None
    except InvalidOperation:
        grams = None
    if grams is None or grams != grams.to_integral_value() or not 0 < grams <= MAX_NET_WEIGHT_G:
        raise _field_error(field, _("Enter the net weight of one unit, such as 5 jin."))
    return int(grams)


# --- the steps of the listing form ----------------------------------------------------------


def validate_listing(
    session: Session,
    actor: User | None,
    data: ListingInput,
    *,
    seller_id: int | None = None,
    fields: Collection[str] | None = None,
) -> None:
    """Check a listing without writing, reporting only `fields` (an early step of a form)."""
    actor = authz.require_user(actor)
    profile, _consent = _seller_for(session, actor, seller_id)
    try:
        _check_listing(session, data, profile)
    except ValidationError as exc:
        errors = {k: v for k, v in exc.field_errors.items() if fields is None or k in fields}
        if errors:
            raise ValidationError(_("Please correct the marked fields."), field_errors=errors) from None


def save_draft(
    session: Session,
    actor: User | None,
    data: ListingInput,
    *,
    seller_id: int | None = None,
    idempotency_key: str,
) -> Product:
    """The listing form's draft: made once per form (the key), changed when the form is sent
    again while it is still a draft, left alone once published."""
    actor = authz.require_user(actor)
    profile, _consent = _seller_for(session, actor, seller_id)
    key = (idempotency_key or "").strip()[:64]
    if not key:
        raise _field_error("idempotency_key", _("This form has expired. Please start again."))
    existing = session.scalar(
        select(Product).where(Product.seller_id == profile.user_id, Product.idempotency_key == key)
    )
    if existing is None:
        return create_product(
            session, actor, data, seller_id=profile.user_id, publish=False, idempotency_key=key
        )
    if existing.status == ProductStatus.DRAFT:
        return update_product(session, actor, existing.id, data)
    return existing


PATCHABLE = frozenset(f.name for f in dataclasses.fields(ListingInput))


def listing_input_of(product: Product) -> ListingInput:
    """A listing's current values, as the services take them."""
    return ListingInput(
        name=product.name,
        category_id=product.category_id,
        unit=product.unit,
        price_fen=product.price_fen,
        stock=product.stock,
        description=product.description,
        net_weight_g=product.net_weight_g,
        storage_class=product.storage_class,
        origin_code=product.origin_code,
        harvest_start=product.harvest_start,
        harvest_end=product.harvest_end,
        presale=product.presale,
        ships_from=product.ships_from,
        certifications=tuple((c.kind, c.number) for c in product.certifications),
    )


def patch_product(
    session: Session, actor: User | None, product_id: int, changes: Mapping[str, Any]
) -> Product:
    """Change some of a listing's fields, keeping the others (the API's PATCH)."""
    product = get_product(session, product_id)
    require_editor(session, actor, product)
    unknown = sorted(set(changes) - PATCHABLE)
    if unknown:
        raise ValidationError(
            _("Please correct the marked fields."), field_errors={k: [_("Unknown field.")] for k in unknown}
        )
    return update_product(
        session, actor, product_id, dataclasses.replace(listing_input_of(product), **changes)
    )


def listing_history(session: Session, actor: User | None, product_id: int) -> list[HistoryEntry]:
    """Who changed the listing and how, newest first, with the people who did it."""
    events = product_history(session, actor, product_id)
    ids = {e.actor_id for e in events if e.actor_id is not None}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [HistoryEntry(event=e, actor=users.get(e.actor_id or 0)) for e in events]


# --- the village picker of the seller profile -------------------------------------------------

VILLAGE_PICKER_LEVELS = (DivisionLevel.CITY, DivisionLevel.COUNTY, DivisionLevel.TOWN, DivisionLevel.VILLAGE)


@dataclass(frozen=True)
class VillagePicker:
    levels: list[PickerLevel]
    division: Division | None  # the village, once every level is picked


def village_picker(session: Session, selected: Mapping[str, str]) -> VillagePicker:
    """City → county → town → village, one level at a time; a pick that does not belong under the
    level above is dropped, not an error."""
    levels: list[PickerLevel] = []
    parent: str | None = "44"
    division: Division | None = None
    for level in VILLAGE_PICKER_LEVELS:
        if parent is None:
            break
        options = list_divisions(session, parent_code=parent)
        wanted = str(selected.get(level.value) or "").strip()
        chosen = next((d for d in options if d.code == wanted), None)
        levels.append(PickerLevel(level=level, options=options, selected=chosen.code if chosen else ""))
        parent = chosen.code if chosen else None
        division = chosen
    complete = len(levels) == len(VILLAGE_PICKER_LEVELS) and bool(levels[-1].selected)
    return VillagePicker(levels=levels, division=division if complete else None)


def picker_selection(code: str | None) -> dict[str, str]:
    """The picker's choices that lead to a division code (a saved profile's village)."""
    code = code or ""
    return {
        level.value: code[:n]
        for level, n in zip(VILLAGE_PICKER_LEVELS, (4, 6, 9, 12), strict=True)
        if len(code) >= n
    }


# --- audit helpers ----------------------------------------------------------------------------


def _snapshot(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "description": product.description,
        "category_id": product.category_id,
        "origin_code": product.origin_code,
        "unit": product.unit.value if product.unit else None,
        "net_weight_g": product.net_weight_g,
        "price_fen": product.price_fen,
        "stock": product.stock,
        "storage_class": product.storage_class.value if product.storage_class else None,
        "harvest_start": product.harvest_start.isoformat() if product.harvest_start else None,
        "harvest_end": product.harvest_end.isoformat() if product.harvest_end else None,
        "presale": product.presale,
        "ships_from": product.ships_from.isoformat() if product.ships_from else None,
        "status": product.status.value if product.status else None,
        "certifications": sorted(f"{c.kind.value}:{c.number}" for c in product.certifications),
    }


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def _audit(
    session: Session, actor: User, action: str, entity_type: str, entity_id: int, changes: dict[str, Any]
) -> None:
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            changes=changes,
        )
    )


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$", re.ASCII)


def is_slug(slug: Any) -> bool:
    return isinstance(slug, str) and SLUG_RE.match(slug) is not None


def import_categories(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add the categories not yet present, matched on slug (parents first); returns how many.

    Rows: slug, name (Chinese), name_en, flow, position, and parent (a slug) for children.
    Existing categories are left as they are, so running it twice adds nothing.
    """
    rows = list(rows)
    existing = dict(session.execute(select(Category.slug, Category.id)).tuples().all())
    added = 0
    for row in sorted(rows, key=lambda r: r.get("parent") is not None):
        slug = row["slug"]
        if not is_slug(slug):
            raise ValidationError(_("Invalid category slug %(slug)s.", slug=slug))
        if slug in existing:
            continue
        parent_slug = row.get("parent")
        if parent_slug is not None and parent_slug not in existing:
            raise ValidationError(_("Unknown parent category %(slug)s.", slug=parent_slug))
        result = session.execute(
            insert(Category).returning(Category.id),
            [
                {
                    "slug": slug,
                    "name": row["name"],
                    "name_en": row["name_en"],
                    "flow": CategoryFlow(row["flow"]),
                    "position": int(row.get("position", 0)),
                    "parent_id": existing[parent_slug] if parent_slug else None,
                }
            ],
        )
        existing[slug] = result.scalar_one()
        added += 1
    session.commit()
    return added
