"""Listings: reading one, creating and editing it (one-tap price and stock, pause and resume), the
seller's list and the change history. Each change is audited and reindexed for search."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    MAX_PRICE_FEN,
    MAX_STOCK,
    AuditEvent,
    Category,
    Certification,
    CertificationKind,
    Division,
    DivisionLevel,
    Product,
    ProductStatus,
    SellerProfile,
    StorageClass,
    Unit,
    User,
    clock,
)
from services import authz, search
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.i18n import _
from services.places import HistoryEntry
from services.validation import check_text

from . import audit, freshness
from .access import can_edit_product, require_editor, seller_for
from .common import MAX_NET_WEIGHT_G, UNIT_WEIGHT_G, field_error, is_int
from .consents import active_consent
from .sellers import get_seller_profile

MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2100, 12, 31)
# What a seller may move a listing between with one tap (sold_out is set by stock reaching 0).
STATUS_MOVES = {
    ProductStatus.DRAFT: {ProductStatus.ACTIVE},
    ProductStatus.ACTIVE: {ProductStatus.PAUSED},
    ProductStatus.PAUSED: {ProductStatus.ACTIVE},
    ProductStatus.SOLD_OUT: {ProductStatus.PAUSED, ProductStatus.ACTIVE},
}
LISTED = (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT)  # the statuses buyers' lists show


def _lists_change(session: Session, was_listed: bool, product: Product, reason: str) -> None:
    """A change to a listing the shop's lists show (before or after it): their version moves
    with this transaction (services/catalog/freshness.py)."""
    if was_listed or product.status in LISTED:
        freshness.bump(session, reason)


def get_product(session: Session, product_id: int) -> Product:
    """Any listing by id, whatever its status; NotFound for an unknown id."""
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


def check_listing(session: Session, data: ListingInput, seller: SellerProfile) -> dict[str, Any]:
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
        if is_int(data.category_id) and 0 < data.category_id < 2**31
        else None
    )
    if category is None or category.parent_id is None:
        errors["category_id"] = [_("Choose a category from the list.")]
    else:
        clean["category_id"] = category.id

    def money() -> int:
        if not is_int(data.price_fen) or not 0 < data.price_fen <= MAX_PRICE_FEN:
            raise field_error("price_fen", _("Enter a price between ¥0.01 and ¥100,000."))
        return data.price_fen

    def stock() -> int:
        if not is_int(data.stock) or not 0 <= data.stock <= MAX_STOCK:
            raise field_error("stock", _("Enter a stock between 0 and 1,000,000."))
        return data.stock

    def weight() -> int:
        fixed = UNIT_WEIGHT_G.get(data.unit)
        if fixed is not None:
            return fixed
        if not is_int(data.net_weight_g) or not 0 < data.net_weight_g <= MAX_NET_WEIGHT_G:
            raise field_error("net_weight_g", _("Enter the net weight of one unit in grams."))
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
    profile, consent = seller_for(session, actor, seller_id)
    key = (idempotency_key or "").strip()[:64] or None
    if key:
        existing = session.scalar(
            select(Product).where(Product.seller_id == profile.user_id, Product.idempotency_key == key)
        )
        if existing is not None:
            return existing
    clean = check_listing(session, data, profile)
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
    audit.record(session, actor, "create", "product", product.id, audit.snapshot(product))
    _lists_change(session, False, product, "listing created")
    session.commit()
    return product


def update_product(session: Session, actor: User | None, product_id: int, data: ListingInput) -> Product:
    """Change a listing's details (the seller of record stays the same)."""
    product = get_product(session, product_id)
    actor = require_editor(session, actor, product)
    profile = get_seller_profile(session, product.seller_id)
    clean = check_listing(session, data, profile)
    certs = clean.pop("certifications")
    before = audit.snapshot(product)
    was_listed = product.status in LISTED
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
    changes = audit.diff(before, audit.snapshot(product))
    if changes:
        session.flush()
        search.index_product(session, product)
        audit.record(session, actor, "update", "product", product.id, changes)
        _lists_change(session, was_listed, product, "listing edited")
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
    actor = require_editor(session, actor, product)
    errors: dict[str, list[Any]] = {}
    if price_fen is not None and (not is_int(price_fen) or not 0 < price_fen <= MAX_PRICE_FEN):
        errors["price_fen"] = [_("Enter a price between ¥0.01 and ¥100,000.")]
    if stock is not None and (not is_int(stock) or not 0 <= stock <= MAX_STOCK):
        errors["stock"] = [_("Enter a stock between 0 and 1,000,000.")]
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    before = audit.snapshot(product)
    was_listed = product.status in LISTED
    if price_fen is not None:
        product.price_fen = price_fen
    if stock is not None:
        product.stock = stock
    _after_stock_change(product)
    changes = audit.diff(before, audit.snapshot(product))
    if changes:
        audit.record(session, actor, "update", "product", product.id, changes)
    if changes.keys() & {"price_fen", "status"}:  # the stock figure alone shows on no list
        _lists_change(session, was_listed, product, "price or stock state")
    session.commit()
    return product


def set_status(session: Session, actor: User | None, product_id: int, status: ProductStatus) -> Product:
    """Publish, pause or resume a listing."""
    product = get_product(session, product_id)
    actor = require_editor(session, actor, product)
    try:
        status = ProductStatus(status)
    except ValueError:
        raise field_error("status", _("Unknown status.")) from None
    if status == product.status:
        return product  # a repeated tap
    if status not in STATUS_MOVES[product.status]:
        raise Conflict(_("This listing cannot be changed that way now."))
    if status == ProductStatus.ACTIVE and product.stock == 0 and not product.presale:
        raise field_error("stock", _("Add stock before putting the listing on sale."))
    before = product.status
    product.status = status
    if status == ProductStatus.ACTIVE and product.published_at is None:
        product.published_at = clock.now()
    session.flush()
    search.index_product(session, product)
    audit.record(session, actor, "status", "product", product.id, {"status": [before.value, status.value]})
    _lists_change(session, before in LISTED, product, "listing status")
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
    """The listing's audit events, newest first (for those who may change it)."""
    product = get_product(session, product_id)
    require_editor(session, actor, product)
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "product", AuditEvent.entity_id == str(product.id))
            .order_by(AuditEvent.id.desc())
            .limit(50)
        )
    )


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
