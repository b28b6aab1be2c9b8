"""The network of places: divisions, county service centers, village points, distribution centers."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session, selectinload

from marketplace.models import (
    CODE_LENGTH,
    AuditEvent,
    CountyServiceCenter,
    DistributionCenter,
    Division,
    DivisionLevel,
    Node,
    NodeKind,
    Role,
    User,
    VillageServicePoint,
)
from services import authz
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.i18n import _
from services.validation import check_opening_hours, check_text, normalize_contact_phone

NODE_CLASSES: dict[NodeKind, type[Node]] = {
    NodeKind.COUNTY_CENTER: CountyServiceCenter,
    NodeKind.VILLAGE_POINT: VillageServicePoint,
    NodeKind.DISTRIBUTION_CENTER: DistributionCenter,
}

# The division each kind of node must stand in.
NODE_DIVISION_LEVEL = {
    NodeKind.COUNTY_CENTER: DivisionLevel.COUNTY,
    NodeKind.VILLAGE_POINT: DivisionLevel.VILLAGE,
    NodeKind.DISTRIBUTION_CENTER: DivisionLevel.COUNTY,
}

# Fields a node's own operator (agent, DC staff) may change; the rest need county staff or admin.
OPERATOR_FIELDS = {"phone", "opening_hours", "description"}
ADMIN_FIELDS = {
    "name",
    "address",
    "longitude",
    "latitude",
    "has_cold_storage",
    "active",
}


# --- divisions --------------------------------------------------------------------------------


def read_division_files(divisions_csv: Path, coordinates_csv: Path) -> list[dict[str, Any]]:
    """Rows of divisions.csv joined with coordinates.csv (towns and villages get none)."""
    coords: dict[str, tuple[float, float]] = {}
    with coordinates_csv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            coords[row["code"]] = (float(row["longitude"]), float(row["latitude"]))
    rows = []
    with divisions_csv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lon_lat = coords.get(row["code"])
            rows.append(
                {
                    "code": row["code"],
                    "name": row["name"],
                    "level": DivisionLevel(row["level"]),
                    "parent_code": row["parent_code"] or None,
                    "longitude": lon_lat[0] if lon_lat else None,
                    "latitude": lon_lat[1] if lon_lat else None,
                    "coordinates_approximate": False,
                }
            )
    return rows


def import_divisions(
    session: Session, rows: Iterable[Mapping[str, Any]], *, only_cities: set[str] | None = None
) -> int:
    """Add the divisions not yet present (parents first); running it twice adds nothing.

    `only_cities` limits the import to the province, those cities and everything under them.
    """
    wanted = []
    for row in rows:
        code = row["code"]
        level = DivisionLevel(row["level"])
        if len(code) != CODE_LENGTH[level] or not code.isdigit():
            raise ValidationError(_("Invalid division code %(code)s.", code=code))
        if only_cities is not None and level != DivisionLevel.PROVINCE and code[:4] not in only_cities:
            continue
        wanted.append(dict(row, level=level))
    existing = set(session.scalars(select(Division.code)))
    new = [r for r in wanted if r["code"] not in existing]
    new.sort(key=lambda r: len(r["code"]))  # parents before children
    if new:
        session.execute(insert(Division), new)
    session.commit()
    return len(new)


def get_division(session: Session, code: str) -> Division:
    division = session.get(Division, code)
    if division is None:
        raise NotFound(_("Unknown division code."))
    return division


def list_divisions(
    session: Session, *, parent_code: str | None = None, level: DivisionLevel | None = None
) -> list[Division]:
    stmt = select(Division).order_by(Division.code)
    if parent_code is not None:
        stmt = stmt.where(Division.parent_code == parent_code)
    if level is not None:
        stmt = stmt.where(Division.level == level)
    return list(session.scalars(stmt))


def counties_with_points(session: Session) -> list[Division]:
    """Counties that have at least one active village service point, for the public filter."""
    sub = select(Node.county_code).where(Node.kind == NodeKind.VILLAGE_POINT, Node.active.is_(True))
    return list(session.scalars(select(Division).where(Division.code.in_(sub)).order_by(Division.code)))


def division_path(session: Session, code: str) -> list[Division]:
    """The chain city → county → town → village ending at `code` (province left out)."""
    chain: list[Division] = []
    division = session.get(Division, code)
    while division is not None and division.level != DivisionLevel.PROVINCE:
        chain.append(division)
        division = division.parent
    return list(reversed(chain))


def _county_of(division: Division) -> str:
    return division.code[:6]


def _centroid(session: Session, division: Division) -> tuple[float | None, float | None, bool]:
    """The division's own position, else the nearest ancestor's (marked approximate)."""
    current: Division | None = division
    while current is not None:
        if current.longitude is not None and current.latitude is not None:
            return current.longitude, current.latitude, current is not division
        current = current.parent
    return None, None, True


# --- nodes ------------------------------------------------------------------------------------


def get_node(session: Session, node_id: int, kind: NodeKind | None = None) -> Node:
    node = session.get(Node, node_id)
    if node is None or (kind is not None and node.kind != kind):
        raise NotFound(_("This service point or center does not exist."))
    return node


def list_village_points(
    session: Session, *, county_code: str | None = None, include_inactive: bool = False
) -> list[VillageServicePoint]:
    """Village service points, by county then village code: the public directory."""
    stmt = (
        select(VillageServicePoint)
        .options(selectinload(VillageServicePoint.county_center))
        .order_by(VillageServicePoint.county_code, VillageServicePoint.division_code, VillageServicePoint.id)
    )
    if county_code:
        stmt = stmt.where(VillageServicePoint.county_code == county_code)
    if not include_inactive:
        stmt = stmt.where(VillageServicePoint.active.is_(True))
    return list(session.scalars(stmt))


def list_managed_nodes(session: Session, actor: User | None, *, kind: NodeKind | None = None) -> list[Node]:
    """The nodes an actor may manage: all for admins, their county's for county staff,
    their own point or center for agents and DC staff."""
    actor = authz.require_user(actor)
    stmt = select(Node).order_by(Node.kind, Node.county_code, Node.division_code, Node.id)
    if kind is not None:
        stmt = stmt.where(Node.kind == kind)
    if not authz.is_admin(actor):
        counties = authz.staff_county_codes(actor)
        own = authz.node_ids(actor, Role.AGENT) | authz.node_ids(actor, Role.DC_STAFF)
        if not counties and not own:
            raise Forbidden()
        conditions = []
        if counties:
            conditions.append((Node.county_code.in_(counties)) & (Node.kind != NodeKind.DISTRIBUTION_CENTER))
        if own:
            conditions.append(Node.id.in_(own))
        stmt = stmt.where(or_(*conditions))
    return list(session.scalars(stmt))


def _clean_fields(data: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """Validate the node fields present in `data`; unknown keys are ignored."""
    out: dict[str, Any] = {}
    errors: dict[str, list[Any]] = {}

    def run(field: str, fn: Any) -> None:
        if field in data and field in allowed:
            try:
                out[field] = fn(data[field])
            except ValidationError as exc:
                errors.update(exc.field_errors)

    run("name", lambda v: check_text(v, "name", max_len=80, required=True))
    run("address", lambda v: check_text(v, "address", max_len=200))
    run("description", lambda v: check_text(v, "description", max_len=1000))
    run("phone", lambda v: normalize_contact_phone(v))
    run("opening_hours", check_opening_hours)
    run("has_cold_storage", bool)
    run("active", bool)
    for field, low, high in (("longitude", 109.0, 118.0), ("latitude", 20.0, 26.0)):

        def coord(v: Any, field: str = field, low: float = low, high: float = high) -> float | None:
            if v in (None, ""):
                return None
            try:
                value = float(v)
            except (TypeError, ValueError):
                value = float("nan")
            if not low <= value <= high:
                msg = _("Must be a number between %(low)s and %(high)s (Guangdong).", low=low, high=high)
                raise ValidationError(msg, field_errors={field: [msg]})
            return value

        run(field, coord)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return out


def _audit(session: Session, actor: User, action: str, node: Node, changes: dict[str, Any]) -> None:
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action=action,
            entity_type="node",
            entity_id=str(node.id),
            changes={k: v for k, v in changes.items()},
        )
    )


def create_node(
    session: Session,
    actor: User | None,
    kind: NodeKind,
    data: Mapping[str, Any],
    *,
    served_county_codes: Iterable[str] = (),
) -> Node:
    """Open a county center, village point or distribution center.

    Admins open anything; county staff open village points in their own county.
    """
    actor = authz.require_user(actor)
    division_code = str(data.get("division_code") or "").strip()
    division = session.get(Division, division_code) if division_code else None
    if division is None or division.level != NODE_DIVISION_LEVEL[kind]:
        msg = (
            _("Choose a village from the list.")
            if kind == NodeKind.VILLAGE_POINT
            else _("Choose a county or district from the list.")
        )
        raise ValidationError(msg, field_errors={"division_code": [msg]})
    county_code = _county_of(division)
    allowed = authz.is_admin(actor) or (
        kind == NodeKind.VILLAGE_POINT and county_code in authz.staff_county_codes(actor)
    )
    if not allowed:
        raise Forbidden()
    fields = _clean_fields(data, OPERATOR_FIELDS | ADMIN_FIELDS)
    if "name" not in fields:
        msg = _("This field is required.")
        raise ValidationError(msg, field_errors={"name": [msg]})

    if kind == NodeKind.COUNTY_CENTER:
        existing = session.scalar(
            select(CountyServiceCenter).where(
                CountyServiceCenter.county_code == county_code, CountyServiceCenter.active.is_(True)
            )
        )
        if existing is not None:
            raise Conflict(_("This county already has a service center."))

    node = NODE_CLASSES[kind](division_code=division.code, county_code=county_code, updated_by_id=actor.id)
    for key, value in fields.items():
        setattr(node, key, value)
    if node.longitude is None or node.latitude is None:
        node.longitude, node.latitude, node.coordinates_approximate = _centroid(session, division)
    else:
        node.coordinates_approximate = False
    if kind == NodeKind.VILLAGE_POINT:
        node.county_center = session.scalar(
            select(CountyServiceCenter).where(
                CountyServiceCenter.county_code == county_code, CountyServiceCenter.active.is_(True)
            )
        )
    if kind == NodeKind.COUNTY_CENTER:
        # Points opened before their county's center get it now.
        for point in session.scalars(
            select(VillageServicePoint).where(
                VillageServicePoint.county_code == county_code,
                VillageServicePoint.county_center_id.is_(None),
            )
        ):
            point.county_center = node
    if kind == NodeKind.DISTRIBUTION_CENTER:
        node.served_counties = _counties(session, served_county_codes)
    session.add(node)
    session.flush()
    _audit(session, actor, "create", node, dict(fields, division_code=division.code))
    session.commit()
    return node


def _counties(session: Session, codes: Iterable[str]) -> list[Division]:
    codes = sorted({c.strip() for c in codes if c and c.strip()})
    found = list(
        session.scalars(
            select(Division).where(Division.code.in_(codes), Division.level == DivisionLevel.COUNTY)
        )
    )
    if len(found) != len(codes):
        msg = _("Choose counties from the list.")
        raise ValidationError(msg, field_errors={"served_county_codes": [msg]})
    return found


def update_node(
    session: Session,
    actor: User | None,
    node_id: int,
    data: Mapping[str, Any],
    *,
    served_county_codes: Iterable[str] | None = None,
) -> Node:
    """Change a node's details within the actor's rights; records who changed what."""
    actor = authz.require_user(actor)
    node = get_node(session, node_id)
    if authz.can_administer_node(actor, node):
        allowed = OPERATOR_FIELDS | ADMIN_FIELDS
    elif authz.can_operate_node(actor, node):
        allowed = OPERATOR_FIELDS
        forbidden = (set(data) & ADMIN_FIELDS) - OPERATOR_FIELDS
        changed = [f for f in forbidden if data[f] != getattr(node, f)]
        if changed or served_county_codes is not None:
            raise Forbidden(_("Only county staff or administrators can change these details."))
    else:
        raise Forbidden()
    fields = _clean_fields(data, allowed)
    changes = {k: v for k, v in fields.items() if getattr(node, k) != v}
    for key, value in changes.items():
        setattr(node, key, value)
    if {"longitude", "latitude"} & changes.keys():
        node.coordinates_approximate = node.longitude is None
        if node.longitude is None or node.latitude is None:
            node.longitude, node.latitude, node.coordinates_approximate = _centroid(session, node.division)
    if served_county_codes is not None:
        if node.kind != NodeKind.DISTRIBUTION_CENTER or not authz.is_admin(actor):
            raise Forbidden()
        new = _counties(session, served_county_codes)
        if [d.code for d in new] != [d.code for d in node.served_counties]:
            changes["served_county_codes"] = [d.code for d in new]
            node.served_counties = new
    if changes:
        node.updated_by_id = actor.id
        _audit(session, actor, "update", node, changes)
        session.commit()
    return node


def node_history(session: Session, actor: User | None, node_id: int) -> list[AuditEvent]:
    """Who changed the node and how, newest first (for those who may manage it)."""
    node = get_node(session, node_id)
    if not authz.can_operate_node(actor, node):
        raise Forbidden()
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "node", AuditEvent.entity_id == str(node.id))
            .order_by(AuditEvent.id.desc())
            .limit(50)
        )
    )


def network_summary(session: Session) -> dict[str, int]:
    """How many active centers and points there are, for the home page."""
    from sqlalchemy import func

    rows = session.execute(
        select(Node.kind, func.count(), func.count(func.distinct(Node.county_code)))
        .where(Node.active.is_(True))
        .group_by(Node.kind)
    ).all()
    counts = {kind: (n, counties) for kind, n, counties in rows}
    return {
        "county_centers": counts.get(NodeKind.COUNTY_CENTER, (0, 0))[0],
        "village_points": counts.get(NodeKind.VILLAGE_POINT, (0, 0))[0],
        "distribution_centers": counts.get(NodeKind.DISTRIBUTION_CENTER, (0, 0))[0],
        "counties": counts.get(NodeKind.VILLAGE_POINT, (0, 0))[1],
    }
