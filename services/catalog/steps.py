"""The steps of the listing form: check an early step without writing, and keep the form's draft
(one per form, found again by its idempotency key)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import Product, ProductStatus, User
from services import authz
from services.errors import ValidationError
from services.i18n import _

from .access import seller_for
from .common import field_error
from .listings import ListingInput, check_listing, create_product, update_product


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
    profile, _consent = seller_for(session, actor, seller_id)
    try:
        check_listing(session, data, profile)
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
    profile, _consent = seller_for(session, actor, seller_id)
    key = (idempotency_key or "").strip()[:64]
    if not key:
        raise field_error("idempotency_key", _("This form has expired. Please start again."))
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
