"""The buyer's address book: checking an address, saving it (the first one becomes the default),
listing the buyer's addresses and finding one of them by id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from domain import Address, Division, DivisionLevel, User
from services import authz
from services.errors import ValidationError
from services.i18n import _
from services.validation import check_text, id_or_none, normalize_phone


def _field(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


@dataclass
class AddressInput:
    """An address as typed: the recipient, their phone, the town or village and the rest."""

    recipient: str | None = None
    phone: str | None = None
    division_code: str | None = None
    detail: str | None = None


def check_address(session: Session, data: AddressInput) -> dict[str, Any]:
    """Check every field of a typed address, collecting all errors; returns the clean values."""
    errors: dict[str, list[Any]] = {}
    clean: dict[str, Any] = {}
    for name, fn in (
        ("recipient", lambda: check_text(data.recipient, "recipient", max_len=40, required=True)),
        ("phone", lambda: normalize_phone(data.phone)),
        ("detail", lambda: check_text(data.detail, "detail", max_len=120, required=True)),
    ):
        try:
            clean[name] = fn()
        except ValidationError as exc:
            errors[name] = list(exc.field_errors.get(name) or exc.field_errors.get("phone") or [exc.message])
    code = (data.division_code or "").strip()
    division = session.scalars(_DIVISION, {"code": code}).first() if code.isdigit() else None
    if division is None or division.level not in (DivisionLevel.TOWN, DivisionLevel.VILLAGE):
        errors["division_code"] = [_("Choose the town or village.")]
    else:
        clean["division_code"] = code
        clean["division"] = division  # kept: an order or address made from it needs no reload
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return clean


_DIVISION = select(Division).where(Division.code == bindparam("code"))  # built once: every checkout asks


def save_address(
    session: Session, user: User | None, data: AddressInput, *, default: bool = False
) -> Address:
    """Add an address to the buyer's address book (the first one becomes the default)."""
    user = authz.require_user(user)
    clean = check_address(session, data)
    existing = addresses_of(session, user)
    for a in existing:
        if (a.recipient, a.phone, a.division_code, a.detail) == (
            clean["recipient"],
            clean["phone"],
            clean["division_code"],
            clean["detail"],
        ):
            return a  # the same address typed again
    address = Address(user_id=user.id, is_default=default or not existing, **clean)
    if address.is_default:
        for a in existing:
            a.is_default = False
    session.add(address)
    session.commit()
    return address


def addresses_of(session: Session, user: User | None) -> list[Address]:
    """The buyer's addresses still in use, the default first, then the newest."""
    user = authz.require_user(user)
    return list(
        session.scalars(
            select(Address)
            .where(Address.user_id == user.id, Address.deleted_at.is_(None))
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
    )


def own_address(session: Session, user: User, address_id: Any) -> Address:
    """One of the user's addresses by id (as sent); a field error for anyone else's or none."""
    found_id = id_or_none(address_id)
    address = session.get(Address, found_id) if found_id is not None else None
    if address is None or address.user_id != user.id or address.deleted_at is not None:
        raise _field("address_id", _("Choose one of your addresses."))
    return address
