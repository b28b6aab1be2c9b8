"""The catalog's use cases: seller profiles, agents enrolling farmers under a consent record,
and listings (create, edit, one-tap price and stock, pause and resume), each change audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.models import (
    MAX_PRICE_FEN,
    MAX_STOCK,
    AuditEvent,
    Category,
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
    utcnow,
)
from services import authz, search
from services.accounts import AuthPolicy, consume_sms_code, find_user_by_phone
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.i18n import _
from services.validation import check_text, normalize_phone

SELLER_ROLES = (Role.FARMER, Role.MERCHANT)
# Net weight of one unit when the unit says it: a 斤 is 500 g, a 公斤 1000 g.
UNIT_WEIGHT_G = {Unit.JIN: 500, Unit.KG: 1000}
# What a seller may move a listing between with one tap (sold_out is set by stock reaching 0).
STATUS_MOVES = {
    ProductStatus.DRAFT: {ProductStatus.ACTIVE},
    ProductStatus.ACTIVE: {ProductStatus.PAUSED},
    ProductStatus.PAUSED: {ProductStatus.ACTIVE},
    ProductStatus.SOLD_OUT: {ProductStatus.PAUSED, ProductStatus.ACTIVE},
}


def _field_error(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


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
    profile = session.get(SellerProfile, actor.id) or SellerProfile(user_id=actor.id, kind=kind)
    profile.kind = kind
    _apply_profile(session, profile, shop_name=shop_name, division_code=division_code, intro=intro)
    session.add(profile)
    session.commit()
    return profile


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
    village = session.get(Division, (village_code or "").strip())
    # An agent serves the villages of their own town: the point's village and its neighbours.
    if (
        village is None
        or village.level != DivisionLevel.VILLAGE
        or village.code[:9] != point.division_code[:9]
    ):
        raise _field_error("village_code", _("Choose a village served by your service point."))
    display_name = check_text(display_name, "display_name", max_len=40, required=True)
    consume_sms_code(session, phone, SmsPurpose.LISTING_CONSENT, code, policy, now or utcnow())
    farmer = find_user_by_phone(session, phone)
    if farmer is None:
        # No password: the farmer can set one later with "forgot password" if they get a smartphone.
        farmer = User(
            phone=phone,
            password_hash="!",  # noqa: S106 (matches no password: login is impossible until a reset)
            display_name=display_name,
            phone_verified_at=now or utcnow(),
        )
        session.add(farmer)
        session.flush()
    if not farmer.has_role(Role.FARMER):
        session.add(RoleGrant(user_id=farmer.id, role=Role.FARMER, granted_by_id=actor.id))
    profile = session.get(SellerProfile, farmer.id)
    if profile is None:
        profile = SellerProfile(user_id=farmer.id, kind=SellerKind.FARMER)
        session.add(profile)
        _apply_profile(session, profile, shop_name=display_name, division_code=village.code, intro="")
    elif profile.division_code[:9] != point.division_code[:9]:
        raise Forbidden(_("This farmer lives outside the area of your service point."))
    consent = session.scalar(
        select(ListingConsent).where(
            ListingConsent.farmer_id == farmer.id,
            ListingConsent.agent_id == actor.id,
            ListingConsent.revoked_at.is_(None),
        )
    )
    if consent is None:
        consent = ListingConsent(
            farmer_id=farmer.id, agent_id=actor.id, point_id=point.id, granted_at=now or utcnow()
        )
        session.add(consent)
    session.flush()
    _audit(
        session, actor, "enroll_farmer", "user", farmer.id, {"point_id": point.id, "consent_id": consent.id}
    )
    session.commit()
    return consent


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
    # The consent holds while the agent still runs the point it was given at.
    if consent is not None and consent.point_id in agent_point_ids(agent):
        return consent
    return None


def farmers_of_agent(session: Session, actor: User | None) -> list[ListingConsent]:
    """The farmers an agent may list for, with their consent records."""
    actor = authz.require_user(actor)
    points = agent_point_ids(actor)
    if not points:
        raise Forbidden(_("Only village agents can do this."))
    return list(
        session.scalars(
            select(ListingConsent)
            .where(
                ListingConsent.agent_id == actor.id,
                ListingConsent.revoked_at.is_(None),
                ListingConsent.point_id.in_(points),
            )
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
        consent.revoked_at = now or utcnow()
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


def can_edit_product(session: Session, actor: User | None, product: Product) -> bool:
    if actor is None:
        return False
    if actor.id == product.seller_id or authz.is_admin(actor):
        return True
    return active_consent(session, actor, product.seller_id) is not None


def _require_edit(session: Session, actor: User | None, product: Product) -> User:
    actor = authz.require_user(actor)
    if not can_edit_product(session, actor, product):
        raise Forbidden(_("You cannot change this product."))
    return actor


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

    category = session.get(Category, data.category_id) if isinstance(data.category_id, int) else None
    if category is None or category.parent_id is None:
        errors["category_id"] = [_("Choose a category from the list.")]
    else:
        clean["category_id"] = category.id

    def money() -> int:
        if not isinstance(data.price_fen, int) or not 0 < data.price_fen <= MAX_PRICE_FEN:
            raise _field_error("price_fen", _("Enter a price between ¥0.01 and ¥100,000."))
        return data.price_fen

    def stock() -> int:
        if not isinstance(data.stock, int) or not 0 <= data.stock <= MAX_STOCK:
            raise _field_error("stock", _("Enter a stock between 0 and 1,000,000."))
        return data.stock

    def weight() -> int:
        fixed = UNIT_WEIGHT_G.get(data.unit)
        if fixed is not None:
            return fixed
        if not isinstance(data.net_weight_g, int) or not 0 < data.net_weight_g <= 1_000_000:
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
    origin = session.get(Division, origin_code)
    if origin is None or origin.level == DivisionLevel.PROVINCE:
        errors["origin_code"] = [_("Choose where it comes from.")]
    else:
        clean["origin_code"] = origin.code
        clean["county_code"] = origin.code[:6] if len(origin.code) >= 6 else seller.county_code or origin.code

    if data.harvest_start and data.harvest_end and data.harvest_end < data.harvest_start:
        errors["harvest_end"] = [_("The harvest cannot end before it starts.")]
    clean["harvest_start"], clean["harvest_end"] = data.harvest_start, data.harvest_end
    if data.presale and data.ships_from is None:
        errors["ships_from"] = [_("A pre-sale needs the date it ships from.")]
    clean["presale"], clean["ships_from"] = bool(data.presale), data.ships_from if data.presale else None

    certs: dict[CertificationKind, str] = {}
    for kind, number in data.certifications:
        try:
            cert_kind = CertificationKind(kind)
            certs[cert_kind] = check_text(number, "certifications", max_len=64, required=True)
        except (ValueError, ValidationError):
            errors["certifications"] = [_("Each certification needs its certificate number.")]
    clean["certifications"] = certs
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return clean


def _seller_for(
    session: Session, actor: User, seller_id: int | None
) -> tuple[SellerProfile, ListingConsent | None]:
    """Whose listing this is: the actor's own, or a farmer's the agent has consent for."""
    if seller_id is None or seller_id == actor.id:
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
    now = utcnow()
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
    current = {c.kind: c for c in product.certifications}
    product.certifications = [
        current[k] if k in current and current[k].number == n else Certification(kind=k, number=n)
        for k, n in certs.items()
    ]
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
    if price_fen is not None and (not isinstance(price_fen, int) or not 0 < price_fen <= MAX_PRICE_FEN):
        errors["price_fen"] = [_("Enter a price between ¥0.01 and ¥100,000.")]
    if stock is not None and (not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK):
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
        product.published_at = utcnow()
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
        session.scalars(select(Category).order_by(Category.parent_id.is_not(None), Category.position))
    )


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
