"""The catalog's audit trail: a listing's snapshot, what changed between two, and the event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from domain import AuditEvent, Product, User


def snapshot(product: Product) -> dict[str, Any]:
    """A listing's audited fields, as JSON values."""
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


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that changed, each as [before, after]."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def record(
    session: Session, actor: User, action: str, entity_type: str, entity_id: int, changes: dict[str, Any]
) -> None:
    """Add the audit event of a change to the session (the caller commits)."""
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            changes=changes,
        )
    )
