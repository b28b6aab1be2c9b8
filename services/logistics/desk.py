"""What the logistics pages show (issue 12, item 2), read from shipments, legs and scans; the rules
that move parcels stay in services/logistics/scans.py.

- `scan_nodes`: the nodes a user may scan at (authz.works_at): their village points as an agent,
  their distribution centers as DC staff, the county centers of their counties as county staff.
- `node_desk`: one node's day for its staff: today's scans there (recent first), the parcels at
  the node (with where they go next) and those on their way to it.
- `journey`: one sub-order's shipment as its followers see it (status, ETA, legs with planned and
  actual times, late legs marked, every scan with its node), or None without a shipment (or for
  someone who does not follow it).
- `parcel_label`: what a parcel's printed label says (from, to with the recipient masked, the
  route, storage, weight, order date) for its seller, the staff of its origin node and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from domain import (
    Leg,
    LegStatus,
    Node,
    NodeKind,
    Role,
    Scan,
    ScanKind,
    SellerProfile,
    Shipment,
    ShipmentStatus,
    StorageClass,
    SubOrder,
    User,
    Vehicle,
    clock,
)
from services import authz, places
from services.catalog import seller_name
from services.errors import Forbidden, NotFound, ValidationError
from services.i18n import _
from services.logistics import scans
from services.validation import mask_phone

# Shipments still moving or waiting somewhere (a node's desk lists these).
OPEN = (ShipmentStatus.AT_ORIGIN, ShipmentStatus.AT_NODE, ShipmentStatus.READY, ShipmentStatus.MOVING)
MAX_ROWS = 200  # a node's list on one page


def scan_nodes(session: Session, user: User | None) -> list[Node]:
    """The active nodes `user` may scan at (authz.works_at), by kind then name."""
    if user is None:
        return []
    points = authz.node_ids(user, Role.AGENT) | authz.node_ids(user, Role.DC_STAFF)
    counties = authz.staff_county_codes(user)
    found = session.scalars(
        select(Node)
        .where(
            Node.active.is_(True),
            or_(
                Node.id.in_(sorted(points)),
                (Node.kind == NodeKind.COUNTY_CENTER) & Node.county_code.in_(sorted(counties)),
            ),
        )
        .order_by(Node.kind, Node.name, Node.id)
    )
    return [node for node in found if authz.works_at(user, node)]


def scan_node(session: Session, user: User | None, node_id: int | None) -> Node:
    """The node the user scans at: the one asked for (Forbidden unless they work there), else
    their first; Forbidden for someone who works at no node."""
    user = authz.require_user(user)
    mine = scan_nodes(session, user)
    if not mine:
        raise Forbidden(_("Only the staff of a service point or center scan parcels."))
    if node_id is None:
        return mine[0]
    chosen = next((node for node in mine if node.id == node_id), None)
    if chosen is None:
        node = session.get(Node, node_id)
        if node is None:
            raise NotFound(_("No such node."))
        raise Forbidden(_("Only the staff of %(node)s scan parcels there.", node=node.name))
    return chosen


@dataclass(frozen=True)
class ScanRow:
    at: datetime
    kind: ScanKind
    label: str
    node: str  # the node's name; "" at the buyer's door
    note: str


@dataclass(frozen=True)
class ParcelRow:
    label: str
    status: ShipmentStatus
    next_node: str | None  # where it goes next from here ("" : the buyer's door; None: nowhere)
    since: datetime | None  # arrived here (or handed in)
    expected: datetime | None  # leaves (at the node) or arrives (on its way), as planned
    storage: StorageClass
    late: bool
    printable: bool = False  # handed in here: the node's staff may print its label


@dataclass(frozen=True)
class NodeDesk:
    node: Node
    today: list[ScanRow]
    here: list[ParcelRow]  # at the node: to send on, or to hand over
    inbound: list[ParcelRow]  # left for this node, not arrived yet


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    return dict(session.execute(select(Node.id, Node.name).where(Node.id.in_(wanted))).tuples().all())


def day_start(now: datetime) -> datetime:
    """Midnight today in China, as a UTC datetime like the stored ones."""
    local = now.astimezone(clock.CHINA)
    return datetime.combine(local.date(), time(), tzinfo=clock.CHINA).astimezone(now.tzinfo)


def node_desk(
    session: Session, user: User | None, node_id: int | None, *, now: datetime | None = None
) -> NodeDesk:
    now = now or clock.now()
    node = scan_node(session, user, node_id)
    # Today's scans at the node, and the door deliveries of the legs that leave from it.
    door_legs = select(Leg.id).where(Leg.from_node_id == node.id, Leg.to_node_id.is_(None))
    rows = session.execute(
        select(Scan, SubOrder.number)
        .join(Shipment, Shipment.id == Scan.shipment_id)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(
            Scan.scanned_at >= day_start(now),
            or_(Scan.node_id == node.id, Scan.node_id.is_(None) & Scan.leg_id.in_(door_legs)),
        )
        .order_by(Scan.scanned_at.desc(), Scan.id.desc())
        .limit(MAX_ROWS)
    ).all()
    names = _names(session, {scan.node_id for scan, _n in rows})
    today = [
        ScanRow(s.scanned_at, s.kind, number, names.get(s.node_id or 0, ""), s.note) for s, number in rows
    ]

    here_rows = session.execute(
        select(Shipment, SubOrder)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(Shipment.current_node_id == node.id, Shipment.status.in_(OPEN))
        .order_by(Shipment.updated_at.desc(), Shipment.id.desc())
        .limit(MAX_ROWS)
    ).all()
    inbound_rows = session.execute(
        select(Leg, Shipment, SubOrder)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .join(SubOrder, SubOrder.id == Shipment.sub_order_id)
        .where(Leg.to_node_id == node.id, Leg.status == LegStatus.DEPARTED)
        .order_by(Leg.planned_arrive_at, Leg.id)
        .limit(MAX_ROWS)
    ).all()
    nexts = {leg.to_node_id for shipment, _s in here_rows for leg in shipment.legs}
    names = _names(session, nexts)
    here = []
    for shipment, sub in here_rows:
        after = next((leg for leg in shipment.legs if leg.status == LegStatus.PLANNED), None)
        came = next(
            (leg for leg in reversed(shipment.legs) if leg.to_node_id == node.id and leg.arrived_at), None
        )
        since = came.arrived_at if came is not None else shipment.created_at
        if after is not None and after.from_node_id == node.id:
            next_node: str | None = names.get(after.to_node_id, "") if after.to_node_id else ""
            expected = after.planned_depart_at
        else:
            next_node, expected = None, None
        late = expected is not None and now > expected
        here.append(
            ParcelRow(
                sub.number,
                shipment.status,
                next_node,
                since,
                expected,
                sub.storage_class,
                late,
                printable=shipment.origin_node_id == node.id,
            )
        )
    inbound = [
        ParcelRow(
            sub.number,
            shipment.status,
            None,
            leg.departed_at,
            leg.planned_arrive_at,
            sub.storage_class,
            leg.planned_arrive_at is not None and now > leg.planned_arrive_at,
        )
        for leg, shipment, sub in inbound_rows
    ]
    return NodeDesk(node, today, here, inbound)


# --- one shipment as its followers see it -----------------------------------------------------------


@dataclass(frozen=True)
class LegView:
    seq: int
    from_name: str
    to_name: str | None  # None: the buyer's door
    reverse: bool
    status: LegStatus
    planned_depart_at: datetime | None
    planned_arrive_at: datetime | None
    departed_at: datetime | None
    arrived_at: datetime | None
    late: bool  # arrived after the plan, or not arrived and the plan has passed


@dataclass(frozen=True)
class Journey:
    label: str
    status: ShipmentStatus
    eta_at: datetime | None
    delivered_at: datetime | None
    ready_at: datetime | None  # arrived where the buyer collects it (status READY)
    late: bool  # on its way, and the ETA has passed or a leg is late
    legs: list[LegView]
    scans: list[ScanRow]  # in the order they happened


def _leg_late(leg: Leg, now: datetime) -> bool:
    plan = leg.planned_arrive_at
    if plan is None:
        return False
    if leg.arrived_at is not None:
        return leg.arrived_at > plan
    return now > plan


def journey_of(session: Session, shipment: Shipment, *, now: datetime | None = None) -> Journey:
    now = now or clock.now()
    events = scans.timeline(session, shipment)
    names = _names(
        session,
        {leg.from_node_id for leg in shipment.legs}
        | {leg.to_node_id for leg in shipment.legs}
        | {s.node_id for s in events},
    )
    legs = [
        LegView(
            leg.seq,
            names.get(leg.from_node_id, ""),
            names.get(leg.to_node_id, "") if leg.to_node_id is not None else None,
            leg.reverse,
            leg.status,
            leg.planned_depart_at,
            leg.planned_arrive_at,
            leg.departed_at,
            leg.arrived_at,
            _leg_late(leg, now),
        )
        for leg in shipment.legs
    ]
    delivered = shipment.status in (ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED)
    number = shipment.sub_order.number
    rows = [ScanRow(s.scanned_at, s.kind, number, names.get(s.node_id or 0, ""), s.note) for s in events]
    ready = shipment.status == ShipmentStatus.READY
    ready_at = (
        next((leg.arrived_at for leg in reversed(shipment.legs) if leg.arrived_at), None) if ready else None
    )
    moving = not (delivered or ready)
    late_eta = moving and shipment.eta_at is not None and now > shipment.eta_at
    return Journey(
        label=number,
        status=shipment.status,
        eta_at=shipment.eta_at,
        delivered_at=shipment.sub_order.delivered_at if delivered else None,
        ready_at=ready_at or (shipment.updated_at if ready else None),
        late=moving and (late_eta or any(leg.late and leg.arrived_at is None for leg in legs)),
        legs=legs,
        scans=rows,
    )


def journey(
    session: Session, user: User | None, sub: SubOrder, *, now: datetime | None = None
) -> Journey | None:
    """The sub-order's shipment for someone who follows it (scans.visible_shipment); None when it
    has none, or for someone else."""
    if user is None or scans.shipment_of(session, sub) is None:
        return None
    try:
        shipment = scans.visible_shipment(session, user, sub.number)
    except NotFound:
        return None
    return journey_of(session, shipment, now=now)


# --- the printed label --------------------------------------------------------------------------------


def mask_person(name: str) -> str:
    """张三丰 → 张**: the family name, a star for each other character."""
    name = (name or "").strip()
    return f"{name[:1]}{'*' * max(len(name) - 1, 1)}" if name else ""


@dataclass(frozen=True)
class ParcelLabel:
    label: str  # the sub-order's number, printed as barcode and QR
    shop: str
    origin: str  # the origin node's name
    origin_place: str  # its county and town or village, by the division names
    to_node: str | None  # the pickup node's name; None: the address below
    to_place: str  # the pickup node's place, or the address's divisions and detail
    recipient: str  # masked: 张**
    phone: str  # masked: 138****0000
    route: list[str]  # node names in order; the door last as ""
    storage: StorageClass
    weight_g: int
    ordered_at: datetime


def _place(division: object) -> str:
    chain = places.division_chain(division)  # type: ignore[arg-type]
    return "".join(d.name for d in chain)


def may_print_label(session: Session, user: User | None, shipment: Shipment) -> bool:
    """The seller of the sub-order, the staff of the parcel's origin node, admins."""
    if user is None:
        return False
    if authz.is_admin(user) or shipment.sub_order.seller_id == user.id:
        return True
    origin = session.get(Node, shipment.origin_node_id)
    return origin is not None and authz.works_at(user, origin)


def parcel_label(session: Session, user: User | None, label: object) -> ParcelLabel:
    """What parcel `label`'s printed label says; NotFound for anyone but its seller, the staff of
    its origin node and admins (as for a parcel that does not exist)."""
    user = authz.require_user(user)
    number = str(label or "").strip().upper()[:40]
    sub = session.scalar(select(SubOrder).where(SubOrder.number == number))
    shipment = scans.shipment_of(session, sub) if sub is not None else None
    if sub is None or shipment is None or not may_print_label(session, user, shipment):
        raise NotFound(_("No parcel has the label %(label)s.", label=number))
    order = sub.order
    profile = session.get(SellerProfile, sub.seller_id)
    origin = session.get(Node, shipment.origin_node_id)
    assert origin is not None
    ids: set[int | None] = {leg.from_node_id for leg in shipment.legs}
    names = _names(session, ids | {leg.to_node_id for leg in shipment.legs})
    forward = [leg for leg in shipment.legs if not leg.reverse]
    route = [origin.name] + [names.get(leg.to_node_id, "") if leg.to_node_id else "" for leg in forward]
    pickup = order.pickup_node if shipment.destination_node_id is not None else None
    if pickup is not None:
        to_place = _place(pickup.division) + (pickup.address or "")
    else:
        to_place = _place(order.division) + (order.address_detail or "")
    return ParcelLabel(
        label=sub.number,
        shop=seller_name(sub.seller, profile.shop_name if profile else None),
        origin=origin.name,
        origin_place=_place(origin.division),
        to_node=pickup.name if pickup is not None else None,
        to_place=to_place,
        recipient=mask_person(order.recipient),
        phone=mask_phone(order.recipient_phone),
        route=route,
        storage=sub.storage_class,
        weight_g=sub.weight_g,
        ordered_at=order.created_at,
    )


# --- a scan from the staff's page ---------------------------------------------------------------------

OFFLINE_WINDOW = timedelta(hours=48)  # how long ago a queued scan may say it was made


def _scanned_at(raw: object, now: datetime) -> datetime | None:
    """When the phone says the scan was made (ISO 8601 with its offset): kept within the last
    OFFLINE_WINDOW (record_scan never takes a time in the future); None if absent or unreadable."""
    text = str(raw or "").strip().replace("Z", "+00:00")
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text[:40])
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    at = at.astimezone(now.tzinfo)
    return at if now - OFFLINE_WINDOW <= at else None


def scan_at_node(
    session: Session,
    user: User | None,
    label: object,
    kind: object,
    key: object,
    *,
    node_id: object,
    note: str = "",
    scanned_at: object = None,
    vehicle_id: object = None,
    now: datetime | None = None,
) -> scans.ScanResult:
    """One scan typed, scanned or read by the camera on the staff's page: an exception needs its
    note; the vehicle chosen on the page goes with a departure only (it stays chosen between
    scans, whatever their kind); the rest is scans.record_scan (commits, or refuses and writes
    nothing)."""
    now = now or clock.now()
    if str(kind or "") == ScanKind.EXCEPTION.value and not str(note or "").strip():
        raise ValidationError(
            _("Say what is wrong with the parcel."), field_errors={"note": [_("Required.")]}
        )
    return scans.record_scan(
        session,
        user,
        label,
        kind,
        key,
        node_id=node_id,
        scanned_at=_scanned_at(scanned_at, now),
        note=str(note or "").strip(),
        vehicle_id=vehicle_id if str(kind or "") == ScanKind.DEPARTED.value else None,
        now=now,
    )


def departure_vehicles(session: Session, node: Node) -> list[Vehicle]:
    """The vehicles a departure from `node` may name: its active ones, by plate."""
    return list(
        session.scalars(
            select(Vehicle)
            .where(Vehicle.node_id == node.id, Vehicle.active.is_(True))
            .order_by(Vehicle.plate)
        )
    )


def label_printable(session: Session, user: User | None, sub: SubOrder) -> bool:
    """Whether `user` may print the sub-order's parcel label (it has a shipment; may_print_label)."""
    shipment = scans.shipment_of(session, sub)
    return shipment is not None and may_print_label(session, user, shipment)
