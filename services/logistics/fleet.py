"""The hubs (county service centers and distribution centers) and their vehicles.

A vehicle is based at a hub: its plate (the natural key: a plate is registered once, and adding
the same vehicle again at the same hub is the same vehicle, so a repeated form changes nothing),
ambient or refrigerated, its capacity (kg, and m³ as staff type it, kept in litres) and the
driver's shift (China's wall time). Staff of the hub (authz.HUB_ACTIONS) add and change them;
a vehicle taken off the road (inactive) is left out of the day's plans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import Node, NodeKind, Role, User, Vehicle, VehicleKind
from services import authz
from services.authz import HubAction
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _

HUB_KINDS = (NodeKind.COUNTY_CENTER, NodeKind.DISTRIBUTION_CENTER)
MAX_CAPACITY_KG = 50_000  # a heavy truck's payload; more is a typo
MAX_CAPACITY_M3 = Decimal("120")
# 粤M·12345: a province's one-character abbreviation, the city's letter, then 5 letters or digits
# (6 for a new-energy plate). Typed with or without the dot, in either case, full-width or not.
PLATE_RE = re.compile(r"^([\u4e00-\u9fff])([A-Z])[·.]?([A-Z0-9]{5,6})$")
TIME_RE = re.compile(r"^([01]?\d|2[0-3])[:：]([0-5]\d)$")


def hub(session: Session, node_id: int) -> Node:
    """A county center or a distribution center; NotFound for anything else."""
    node = session.get(Node, node_id)
    if node is None or node.kind not in HUB_KINDS:
        raise NotFound()
    return node


def hubs_of(session: Session, user: User | None) -> list[Node]:
    """The hubs whose day `user` may see: county centers of their counties, their DCs."""
    if user is None:
        return []
    counties = authz.staff_county_codes(user)
    dcs = authz.node_ids(user, Role.DC_STAFF)
    found = session.scalars(
        select(Node)
        .where(Node.kind.in_(HUB_KINDS), Node.active.is_(True))
        .where(
            (Node.kind == NodeKind.COUNTY_CENTER) & Node.county_code.in_(counties)
            | (Node.kind == NodeKind.DISTRIBUTION_CENTER) & Node.id.in_(dcs)
        )
        .order_by(Node.kind, Node.id)
    )
    return [n for n in found if authz.may_hub(HubAction.VIEW, user, n)]


def vehicles(session: Session, node: Node, *, active_only: bool = False) -> list[Vehicle]:
    query = select(Vehicle).where(Vehicle.node_id == node.id)
    if active_only:
        query = query.where(Vehicle.active.is_(True))
    return list(session.scalars(query.order_by(Vehicle.id)))


@dataclass(frozen=True)
class VehicleInput:
    plate: str
    kind: str
    capacity_kg: str
    capacity_m3: str
    shift_start: str
    shift_end: str
    active: bool = True


def _field(field: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field: [message]})


def normalize_plate(raw: str) -> str:
    text = "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in (raw or ""))
    text = re.sub(r"\s+", "", text).upper().replace("•", "·").replace("・", "·")
    match = PLATE_RE.match(text)
    if match is None:
        raise _field("plate", _("Enter a plate like 粤M·12345."))
    return f"{match.group(1)}{match.group(2)}·{match.group(3)}"


def _time(raw: str, field: str) -> time:
    match = TIME_RE.match((raw or "").strip())
    if match is None:
        raise _field(field, _("Enter a time like 07:30."))
    return time(int(match.group(1)), int(match.group(2)))


def _parse(data: VehicleInput) -> dict[str, Any]:
    errors: dict[str, list[Any]] = {}

    def attempt(field: str, parse: Any) -> Any:
        try:
            return parse()
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.field_errors.get(field, [exc.message]))
            return None

    def kind() -> VehicleKind:
        try:
            return VehicleKind(data.kind)
        except ValueError:
            raise _field("kind", _("Choose ambient or refrigerated.")) from None

    def kg() -> int:
        text = (data.capacity_kg or "").strip()
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_CAPACITY_KG:
            raise _field("capacity_kg", _("Enter a whole number of kg from 1 to %(n)d.", n=MAX_CAPACITY_KG))
        return int(text)

    def litres() -> int:
        try:
            m3 = Decimal((data.capacity_m3 or "").strip())
        except InvalidOperation:
            m3 = Decimal(-1)
        if not m3.is_finite() or not Decimal("0.1") <= m3 <= MAX_CAPACITY_M3:
            raise _field("capacity_m3", _("Enter the load volume in m³, from 0.1 to 120."))
        return int(m3 * 1000)

    values = {
        "plate": attempt("plate", lambda: normalize_plate(data.plate)),
        "kind": attempt("kind", kind),
        "capacity_kg": attempt("capacity_kg", kg),
        "capacity_l": attempt("capacity_m3", litres),
        "shift_start": attempt("shift_start", lambda: _time(data.shift_start, "shift_start")),
        "shift_end": attempt("shift_end", lambda: _time(data.shift_end, "shift_end")),
        "active": bool(data.active),
    }
    if not errors and values["shift_start"] >= values["shift_end"]:
        errors["shift_end"] = [_("The shift must end after it starts.")]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationError(first, field_errors=errors)
    return values


def save_vehicle(
    session: Session, user: User | None, node: Node, data: VehicleInput, *, vehicle_id: int | None = None
) -> Vehicle:
    """Add a vehicle to the hub (`vehicle_id` None) or change one of its own; commits."""
    authz.require_hub(HubAction.MANAGE_VEHICLES, user, node)
    values = _parse(data)
    same_plate = session.scalar(select(Vehicle).where(Vehicle.plate == values["plate"]))
    if vehicle_id is None:
        if same_plate is not None:
            if same_plate.node_id == node.id:  # the same vehicle added again (a repeated form)
                return same_plate
            raise Conflict(
                _("The plate %(plate)s is registered at another center.", plate=values["plate"]),
                field_errors={"plate": [_("Registered at another center.")]},
            )
        vehicle = Vehicle(node_id=node.id, **values)
        session.add(vehicle)
    else:
        vehicle = session.get(Vehicle, vehicle_id)  # type: ignore[assignment]
        if vehicle is None or vehicle.node_id != node.id:
            raise NotFound()
        if same_plate is not None and same_plate.id != vehicle.id:
            raise Conflict(
                _("The plate %(plate)s is already registered.", plate=values["plate"]),
                field_errors={"plate": [_("Already registered.")]},
            )
        for name, value in values.items():
            setattr(vehicle, name, value)
    session.commit()
    return vehicle
