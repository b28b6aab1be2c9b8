"""The network of places: divisions, county service centers, village points, distribution centers;
the pickers that choose a place, and which service point serves a seller, an agent or a buyer."""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session, selectinload

from domain import (
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
from services.logistics import schedule
from services.validation import check_opening_hours, check_text, id_or_none, normalize_contact_phone

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

CODE_RE = re.compile(r"^\d{2,12}$", re.ASCII)

# Fields a node's own operator (agent, DC staff) may change; the rest need county staff or admin.
OPERATOR_FIELDS = {"phone", "opening_hours", "description"}
ADMIN_FIELDS = {
    "name",
    "address",
    "longitude",
    "latitude",
    "has_cold_storage",
    "active",
    # The schedule (services/logistics/schedule.py): the county's vehicle runs decide it.
    "delivery_days",
    "cutoff_time",
    "ready_time",
}
SCHEDULE_FIELDS = ("delivery_days", "cutoff_time", "ready_time")

# Guangdong's extent (20°13′–25°31′ N, 109°39′–117°19′ E, 徐闻 to 南雄 and 廉江 to 饶平/南澳),
# rounded outwards: a typed or phone position outside it is a mistake (swapped fields, GCJ-02 of
# another province, a phone far from the point).
GUANGDONG_LATITUDE = (20.1, 25.6)
GUANGDONG_LONGITUDE = (109.6, 117.4)


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


def _is_code(code: Any) -> bool:
    return isinstance(code, str) and CODE_RE.match(code) is not None


def get_division(session: Session, code: str) -> Division:
    division = session.get(Division, code) if _is_code(code) else None
    if division is None:
        raise NotFound(_("Unknown division code."))
    return division


def browse_divisions(
    session: Session, *, parent_code: str | None = None, level: DivisionLevel | None = None
) -> list[Division]:
    """Divisions for a picker or an API client: a division's children, or one level's divisions.

    Without either, the cities. Towns and villages come only under a parent (there are 26,000
    villages)."""
    if parent_code is None and level is None:
        parent_code = "44"
    if parent_code is None and level in (DivisionLevel.TOWN, DivisionLevel.VILLAGE):
        msg = _("Give parent_code to list towns or villages.")
        raise ValidationError(msg, field_errors={"parent_code": [msg]})
    if parent_code is not None:
        get_division(session, parent_code)
    return list_divisions(session, parent_code=parent_code, level=level)


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


def division_chain(division: Division | None) -> list[Division]:
    """City → county → town → village down to `division` (province left out)."""
    chain: list[Division] = []
    while division is not None and division.level != DivisionLevel.PROVINCE:
        chain.append(division)
        division = division.parent
    return list(reversed(chain))


def division_path(session: Session, code: str) -> list[Division]:
    """The chain city → county → town → village ending at `code` (province left out)."""
    return division_chain(session.get(Division, code))


def counties_by_city(session: Session) -> list[tuple[Division, list[Division]]]:
    """Every county-level division, grouped under its city: the choices for served counties."""
    cities = list_divisions(session, level=DivisionLevel.CITY)
    counties = list_divisions(session, level=DivisionLevel.COUNTY)
    return [(city, [c for c in counties if c.parent_code == city.code]) for city in cities]


def _county_of(division: Division) -> str:
    return division.code[:6]


def _centroid(session: Session, division: Division) -> tuple[float | None, float | None, bool]:
    """A stand-in position for a node without its own: the nearest division with coordinates
    (the county's centroid for a village). Always marked approximate."""
    current: Division | None = division
    while current is not None:
        if current.longitude is not None and current.latitude is not None:
            return current.longitude, current.latitude, True
        current = current.parent
    return None, None, True


# --- nodes ------------------------------------------------------------------------------------


def get_node(session: Session, node_id: int, kind: NodeKind | None = None) -> Node:
    # Ids beyond the column's range are simply unknown (PostgreSQL would refuse to compare them).
    node = session.get(Node, node_id) if 0 < node_id < 2**31 else None
    if node is None or (kind is not None and node.kind != kind):
        raise NotFound(_("This service point or center does not exist."))
    return node


def find_node(session: Session, kind: NodeKind, division_code: str) -> Node | None:
    """The first node of a kind standing in a division: the natural key seed data matches on."""
    return session.scalar(
        select(Node).where(Node.kind == kind, Node.division_code == division_code).order_by(Node.id).limit(1)
    )


def parse_kind(raw: str | NodeKind | None) -> NodeKind:
    """A node kind from user input; a clear message for anything else."""
    try:
        return NodeKind(str(raw))
    except ValueError:
        msg = _("Unknown kind of service point or center.")
        raise ValidationError(msg, field_errors={"kind": [msg]}) from None


@dataclass(frozen=True)
class PlacedNode:
    """A node with its place path (city → … → its division), for lists and detail pages."""

    node: Node
    path: list[Division]


def _placed(nodes: Iterable[Node]) -> list[PlacedNode]:
    return [PlacedNode(node=n, path=division_chain(n.division)) for n in nodes]


def village_point_directory(session: Session, county_code: str | None = None) -> list[PlacedNode]:
    """The public directory of active village points, optionally one county's, with place paths."""
    return _placed(list_village_points(session, county_code=county_code or None))


def public_village_point(session: Session, point_id: int) -> PlacedNode:
    """One active village point for the public detail page (closed points are not shown)."""
    point = get_node(session, point_id, NodeKind.VILLAGE_POINT)
    if not point.active:
        raise NotFound(_("This service point or center does not exist."))
    return PlacedNode(node=point, path=division_chain(point.division))


def list_centers(session: Session, kind: NodeKind) -> list[Node]:
    """Active county service centers or distribution centers, by county."""
    if kind == NodeKind.VILLAGE_POINT:
        return list(list_village_points(session))
    cls = NODE_CLASSES[kind]
    return list(
        session.scalars(
            select(cls)
            .where(cls.active.is_(True))
            .options(selectinload(cls.served_counties))
            .order_by(cls.county_code, cls.id)
        )
    )


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
        conditions: list[Any] = []
        if counties:
            conditions.append((Node.county_code.in_(counties)) & (Node.kind != NodeKind.DISTRIBUTION_CENTER))
        if own:
            conditions.append(Node.id.in_(own))
        stmt = stmt.where(or_(*conditions))
    return list(session.scalars(stmt))


def _text(field: str, max_len: int, required: bool = False) -> Any:
    def check(v: Any) -> str:
        if v is not None and not isinstance(v, str):
            msg = _("Enter text.")
            raise ValidationError(msg, field_errors={field: [msg]})
        return check_text(v, field, max_len=max_len, required=required)

    return check


def _flag(field: str) -> Any:
    def check(v: Any) -> bool:
        if isinstance(v, bool):
            return v
        text = str(v).strip().lower() if isinstance(v, str | int) else None
        if text in ("1", "true", "y", "yes", "on"):
            return True
        if text in ("", "0", "false", "n", "no", "off"):
            return False
        msg = _("Choose yes or no.")
        raise ValidationError(msg, field_errors={field: [msg]})

    return check


def _coordinate(field: str, low: float, high: float) -> Any:
    def check(v: Any) -> float | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        try:
            value = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            value = float("nan")
        if not low <= value <= high:  # also refuses NaN and infinities
            msg = _("Must be a number between %(low)s and %(high)s (Guangdong).", low=low, high=high)
            raise ValidationError(msg, field_errors={field: [msg]})
        return value

    return check


def _days(v: Any) -> str:
    try:
        return schedule.parse_days(v if isinstance(v, str | list | tuple) else None)
    except ValueError:
        msg = _("Choose at least one day of the week.")
        raise ValidationError(msg, field_errors={"delivery_days": [msg]}) from None


def _time_of_day(field: str) -> Any:
    def check(v: Any) -> time:
        try:
            return schedule.parse_time(v if isinstance(v, str | time) else None)
        except ValueError:
            msg = _("Enter a time of day such as 22:00.")
            raise ValidationError(msg, field_errors={field: [msg]}) from None

    return check


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

    run("name", _text("name", 80, required=True))
    run("address", _text("address", 200))
    run("description", _text("description", 1000))
    run("phone", lambda v: normalize_contact_phone(_text("phone", 40)(v)))
    run("opening_hours", lambda v: check_opening_hours(_text("opening_hours", 64)(v)))
    run("has_cold_storage", _flag("has_cold_storage"))
    run("active", _flag("active"))
    run("longitude", _coordinate("longitude", *GUANGDONG_LONGITUDE))
    run("latitude", _coordinate("latitude", *GUANGDONG_LATITUDE))
    run("delivery_days", _days)
    run("cutoff_time", _time_of_day("cutoff_time"))
    run("ready_time", _time_of_day("ready_time"))
    if not errors and {"longitude", "latitude"} <= allowed:
        given = [f for f in ("longitude", "latitude") if out.get(f) is not None]
        # A position needs both numbers; one alone would pair with the other's old value.
        if len(given) == 1:
            missing = "latitude" if given == ["longitude"] else "longitude"
            msg = _("Enter both longitude and latitude, or neither.")
            errors[missing] = [msg]
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
            # Times of day as people write them ("22:00"): the column holds JSON.
            changes={k: v.strftime("%H:%M") if isinstance(v, time) else v for k, v in changes.items()},
        )
    )


def creatable_kinds(actor: User | None) -> list[NodeKind]:
    """The kinds of node an actor may open: every kind for admins, village points for county staff."""
    if authz.is_admin(actor):
        return list(NodeKind)
    if authz.staff_county_codes(actor):
        return [NodeKind.VILLAGE_POINT]
    return []


def _division_error(kind: NodeKind) -> ValidationError:
    msg = (
        _("Choose a village from the list.")
        if kind == NodeKind.VILLAGE_POINT
        else _("Choose a county or district from the list.")
    )
    return ValidationError(msg, field_errors={"division_code": [msg]})


def _active_center(session: Session, county_code: str) -> CountyServiceCenter | None:
    return session.scalar(
        select(CountyServiceCenter).where(
            CountyServiceCenter.county_code == county_code, CountyServiceCenter.active.is_(True)
        )
    )


def create_node(
    session: Session,
    actor: User | None,
    kind: NodeKind,
    data: Mapping[str, Any],
    *,
    served_county_codes: Iterable[str] = (),
    position_estimated: bool = False,
) -> Node:
    """Open a county center, village point or distribution center.

    Admins open anything; county staff open village points in their own county.
    Everything is checked before anything is written. `position_estimated`: the coordinates
    given are an estimate (the demo seed's, seed/positions.py), not measured: the node stays
    marked approximate.
    """
    actor = authz.require_user(actor)
    allowed = creatable_kinds(actor)
    if not allowed:
        raise Forbidden()  # who may, before what they sent
    kind = parse_kind(kind)
    if kind not in allowed:
        raise Forbidden()
    division_code = str(data.get("division_code") or "").strip()
    division = session.get(Division, division_code) if _is_code(division_code) else None
    if division is None or division.level != NODE_DIVISION_LEVEL[kind]:
        raise _division_error(kind)
    county_code = _county_of(division)
    if not (authz.is_admin(actor) or county_code in authz.staff_county_codes(actor)):
        raise Forbidden()
    fields = _clean_fields(data, OPERATOR_FIELDS | ADMIN_FIELDS)
    if "name" not in fields:
        msg = _("This field is required.")
        raise ValidationError(msg, field_errors={"name": [msg]})
    served = _counties(session, served_county_codes) if kind == NodeKind.DISTRIBUTION_CENTER else []
    center = _active_center(session, county_code)
    if kind == NodeKind.COUNTY_CENTER and center is not None:
        raise Conflict(_("This county already has a service center."))

    node = NODE_CLASSES[kind](division_code=division.code, county_code=county_code, updated_by_id=actor.id)
    for key, value in fields.items():
        setattr(node, key, value)
    if node.longitude is None or node.latitude is None:
        node.longitude, node.latitude, node.coordinates_approximate = _centroid(session, division)
    else:
        node.coordinates_approximate = position_estimated
    if kind == NodeKind.VILLAGE_POINT:
        node.county_center = center
    session.add(node)
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
        node.served_counties = served
    session.flush()
    changes = dict(fields, division_code=division.code)
    if served:
        changes["served_county_codes"] = [d.code for d in served]
    _audit(session, actor, "create", node, changes)
    session.commit()
    return node


def _counties(session: Session, codes: Iterable[str]) -> list[Division]:
    if isinstance(codes, str):
        codes = [codes]
    wanted = sorted({str(c).strip() for c in codes if c is not None and str(c).strip()})
    if not all(_is_code(c) for c in wanted):
        msg = _("Choose counties from the list.")
        raise ValidationError(msg, field_errors={"served_county_codes": [msg]})
    found = list(
        session.scalars(
            select(Division).where(Division.code.in_(wanted), Division.level == DivisionLevel.COUNTY)
        )
    )
    if len(found) != len(wanted):
        msg = _("Choose counties from the list.")
        raise ValidationError(msg, field_errors={"served_county_codes": [msg]})
    return found


def editable_fields(actor: User | None, node: Node) -> frozenset[str]:
    """The fields of `node` the actor may change (empty when they may not touch it)."""
    if authz.can_administer_node(actor, node):
        return frozenset(OPERATOR_FIELDS | ADMIN_FIELDS)
    if authz.can_operate_node(actor, node):
        return frozenset(OPERATOR_FIELDS)
    return frozenset()


def update_node(
    session: Session,
    actor: User | None,
    node_id: int,
    data: Mapping[str, Any],
    *,
    served_county_codes: Iterable[str] | None = None,
) -> Node:
    """Change a node's details within the actor's rights; records who changed what.

    Everything is checked before anything changes, so a refused or invalid edit writes nothing.
    """
    actor = authz.require_user(actor)
    node = get_node(session, node_id)
    allowed = editable_fields(actor, node)
    if not allowed:
        raise Forbidden()
    if allowed != OPERATOR_FIELDS | ADMIN_FIELDS:
        # An operator may send the other fields unchanged (a full form), never changed.
        changed = [f for f in (set(data) & ADMIN_FIELDS) - allowed if data[f] != getattr(node, f)]
        if changed:
            raise Forbidden(_("Only county staff or administrators can change these details."))
    fields = _clean_fields(data, set(allowed))
    new_served: list[Division] | None = None
    if served_county_codes is not None:
        if node.kind != NodeKind.DISTRIBUTION_CENTER or not authz.is_admin(actor):
            raise Forbidden(_("Only administrators can change the counties a distribution center serves."))
        new_served = _counties(session, served_county_codes)

    changes = {k: v for k, v in fields.items() if getattr(node, k) != v}
    for key, value in changes.items():
        setattr(node, key, value)
    if {"longitude", "latitude"} & changes.keys():
        if node.longitude is None or node.latitude is None:
            node.longitude, node.latitude, node.coordinates_approximate = _centroid(session, node.division)
        else:
            node.coordinates_approximate = False
    if new_served is not None and [d.code for d in new_served] != [d.code for d in node.served_counties]:
        changes["served_county_codes"] = [d.code for d in new_served]
        node.served_counties = new_served
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


@dataclass(frozen=True)
class HistoryEntry:
    event: AuditEvent
    actor: User | None


@dataclass(frozen=True)
class NodeEditor:
    """Everything the edit page needs: the node, what the actor may change, and its history."""

    node: Node
    path: list[Division]
    fields: frozenset[str]
    can_change_served_counties: bool
    history: list[HistoryEntry]


def node_editor(session: Session, actor: User | None, node_id: int) -> NodeEditor:
    """The edit view of a node for an actor who may change at least part of it."""
    actor = authz.require_user(actor)
    node = get_node(session, node_id)
    fields = editable_fields(actor, node)
    if not fields:
        raise Forbidden()
    events = node_history(session, actor, node_id)
    ids = {e.actor_id for e in events if e.actor_id is not None}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return NodeEditor(
        node=node,
        path=division_chain(node.division),
        fields=fields,
        can_change_served_counties=node.kind == NodeKind.DISTRIBUTION_CENTER and authz.is_admin(actor),
        history=[HistoryEntry(event=e, actor=users.get(e.actor_id or 0)) for e in events],
    )


# --- the division picker of the "new node" page ---------------------------------------------

PICKER_LEVELS = {
    NodeKind.VILLAGE_POINT: (
        DivisionLevel.CITY,
        DivisionLevel.COUNTY,
        DivisionLevel.TOWN,
        DivisionLevel.VILLAGE,
    ),
    NodeKind.COUNTY_CENTER: (DivisionLevel.CITY, DivisionLevel.COUNTY),
    NodeKind.DISTRIBUTION_CENTER: (DivisionLevel.CITY, DivisionLevel.COUNTY),
}


@dataclass(frozen=True)
class PickerLevel:
    level: DivisionLevel
    options: list[Division]
    selected: str = ""


@dataclass(frozen=True)
class DivisionPicker:
    """City → county → town → village, one level at a time, within the actor's scope."""

    kind: NodeKind
    levels: list[PickerLevel]
    division: Division | None  # the complete choice, once every level is picked

    @property
    def path(self) -> list[Division]:
        return division_chain(self.division)


def division_picker(
    session: Session, actor: User | None, kind: str | NodeKind | None, selected: Mapping[str, str]
) -> DivisionPicker:
    """The options at each level given what is picked so far; a pick that does not belong under
    the level above (or outside the actor's counties) is dropped, not an error."""
    actor = authz.require_user(actor)
    allowed = creatable_kinds(actor)
    if not allowed:
        raise Forbidden()  # who may, before what they sent
    kind = parse_kind(kind)
    if kind not in allowed:
        raise Forbidden()
    scope = None if authz.is_admin(actor) else authz.staff_county_codes(actor)
    levels, division = _pick(session, PICKER_LEVELS[kind], selected, scope)
    return DivisionPicker(kind=kind, levels=levels, division=division)


def _pick(
    session: Session,
    wanted_levels: Sequence[DivisionLevel],
    selected: Mapping[str, str],
    scope: Collection[str] | None = None,
) -> tuple[list[PickerLevel], Division | None]:
    """The levels a picker shows given what is picked so far, and the complete choice (None until
    every level is picked). `scope`: the only counties (and their cities) offered."""
    levels: list[PickerLevel] = []
    parent: str | None = "44"
    division: Division | None = None
    for level in wanted_levels:
        if parent is None:
            break
        options = list_divisions(session, parent_code=parent)
        if scope is not None and level == DivisionLevel.CITY:
            options = [d for d in options if any(c.startswith(d.code) for c in scope)]
        elif scope is not None and level == DivisionLevel.COUNTY:
            options = [d for d in options if d.code in scope]
        wanted = str(selected.get(level.value) or "").strip()
        chosen = next((d for d in options if d.code == wanted), None)
        levels.append(PickerLevel(level=level, options=options, selected=chosen.code if chosen else ""))
        parent = chosen.code if chosen else None
        division = chosen
    complete = len(levels) == len(wanted_levels) and bool(levels[-1].selected)
    return levels, division if complete else None


# --- the village picker: a seller's village, a delivery address's ------------------------------

VILLAGE_PICKER_LEVELS = (DivisionLevel.CITY, DivisionLevel.COUNTY, DivisionLevel.TOWN, DivisionLevel.VILLAGE)


@dataclass(frozen=True)
class VillagePicker:
    """City → county → town → village, one level at a time."""

    levels: list[PickerLevel]
    division: Division | None  # the village, once every level is picked

    @property
    def code(self) -> str:
        """The deepest division picked so far ("" for none): what a form sends on, so that a
        half-made choice gets the service's message about the missing levels."""
        return next((lvl.selected for lvl in reversed(self.levels) if lvl.selected), "")


def village_picker(session: Session, selected: Mapping[str, str]) -> VillagePicker:
    """City → county → town → village, one level at a time; a pick that does not belong under the
    level above is dropped, not an error."""
    levels, division = _pick(session, VILLAGE_PICKER_LEVELS, selected)
    return VillagePicker(levels=levels, division=division)


def picker_selection(code: str | None) -> dict[str, str]:
    """The picker's choices that lead to a division code (a saved profile's village)."""
    code = code or ""
    return {
        level.value: code[:n]
        for level, n in zip(VILLAGE_PICKER_LEVELS, (4, 6, 9, 12), strict=True)
        if len(code) >= n
    }


# --- service points: a village's, an agent's, a buyer's pickup point ---------------------------


def village_point_of(session: Session, village_code: str) -> Node | None:
    """The village's open service point (a farmer's home point), the oldest if it has several."""
    return session.scalar(
        select(Node)
        .where(Node.kind == NodeKind.VILLAGE_POINT, Node.division_code == village_code, Node.active.is_(True))
        .order_by(Node.id)
        .limit(1)
    )


@dataclass(frozen=True)
class EnrollmentVillages:
    """The villages an agent may enroll farmers from, per service point (the point's town)."""

    point: Node
    villages: list[Division]


def enrollment_villages(session: Session, actor: User | None) -> list[EnrollmentVillages]:
    """The agent's open village points, each with the villages of its town (its own first)."""
    actor = authz.require_user(actor)
    points = sorted(authz.node_ids(actor, Role.AGENT))
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


def enrollment_point(groups: Sequence[EnrollmentVillages], village_code: str) -> int | None:
    """The agent's point that serves the village, else their only point; None when they have
    several and none serves it (enrolling then asks which point they act for)."""
    return next(
        (g.point.id for g in groups if any(d.code == village_code for d in g.villages)),
        groups[0].point.id if len(groups) == 1 else None,
    )


PICKUP_KINDS = (NodeKind.VILLAGE_POINT, NodeKind.DISTRIBUTION_CENTER)


def pickup_points(session: Session, county_code: str | None = None) -> list[Node]:
    """The open village points and distribution centers a buyer may collect an order from."""
    stmt = select(Node).where(Node.active.is_(True), Node.kind.in_(PICKUP_KINDS))
    if county_code:
        stmt = stmt.where(Node.county_code == county_code)
    return list(session.scalars(stmt.order_by(Node.county_code, Node.name)))


def pickup_point(session: Session, node_id: Any) -> Node | None:
    """The pickup point a buyer chose (an id as sent), if it is one and open; None otherwise."""
    found_id = id_or_none(node_id)
    node = session.get(Node, found_id) if found_id is not None else None
    if node is None or not node.active or node.kind not in PICKUP_KINDS:
        return None
    return node


def network_summary(session: Session) -> dict[str, int]:
    """How many active centers and points there are, for the home page."""
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
