"""Shipments and the scans that move them (issue 12, items 1-2).

A shipment is made when a sub-order's goods are handed in (`start`, called by the intake in its
own transaction): its legs follow services/logistics/network.py's route, planned from the intake's
moment, and its first scan is the intake itself (collected at the origin).

Scans move it, each by a member of the node's staff (authz.works_at):

    departed   at the next leg's start: the leg is under way; the sub-order's first departure
               moves it HANDED_IN → IN_TRANSIT, a departure on the leg to the door
               IN_TRANSIT → OUT_FOR_DELIVERY. It may name the vehicle carrying the leg (an
               active vehicle of the node scanned at): it becomes the leg's vehicle, over the
               route plan's, so that vehicle's cold-chain readings reach the lots aboard. The
               pallet the parcel was on departs with its last parcel (pallets.leg_departed)
    arrived    at the end of the leg under way; at the pickup node the sub-order becomes
               READY_FOR_PICKUP (its pickup code goes out, as with services/parcels.mark_arrived)
    delivered  at the door, by the staff of the node the last leg left from: the sub-order's
               completion timer starts (`SubOrder.delivered_at`; services/jobs.complete_delivered)
    exception  recorded with its note, moves nothing

A parcel not collected in time is returned (services/parcels.py): `send_back` gives its shipment
reverse legs from where it waits back to its origin, the way it came; their departed and arrived
scans move only the parcel (RETURNING, then RETURNED at the origin), never the refunded sub-order.

A scan that repeats one already made (the same label scanned again at the same node for the same
move) changes nothing and answers with the first; the same idempotency key again is the same scan.
A scan out of order (an arrival where the parcel never left for, a departure from a node it is not
at) is refused with what the parcel expects next, and nothing is written. A move (departed,
arrived, delivered) clears the flag the flag-stuck-parcels job set (services/logistics/
exceptions.py); an exception scan moves nothing and leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from domain import (
    Leg,
    LegStatus,
    Node,
    OrderStatus,
    Scan,
    ScanKind,
    SellerKind,
    SellerProfile,
    Shipment,
    ShipmentStatus,
    SubOrder,
    User,
    Vehicle,
    clock,
)
from services import authz
from services.authz import Party
from services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationError
from services.i18n import _
from services.logistics import network, pallets, schedule, trace
from services.orders import states
from services.orders.checkout import check_idempotency_key

S = OrderStatus


class IllegalScan(Conflict):
    code = "illegal_scan"


class ScanConflict(Conflict):
    code = "conflict"


@dataclass(frozen=True)
class ScanResult:
    scan: Scan
    applied: bool  # False: it repeated a scan already made (nothing changed)


def _plan(found: network.Route, origin: Node, now: datetime) -> schedule.Plan:
    """The legs' planned times from the hand-in at `now`: each leg takes the first run of its
    schedule (delivery days, ready times, trunks) after the parcel is in hand
    (services/logistics/schedule.py)."""
    return schedule.plan(
        schedule.load_stops(found.hops), origin=schedule.Stop.of(origin), at_time=now, ordered=False
    )


def _own_scan(
    shipment: Shipment, kind: ScanKind, node_id: int | None, actor: User | None, now: datetime, key: str
) -> Scan:
    """A scan another use case makes (the intake's collection, a hand-over at the point)."""
    return Scan(
        shipment_id=shipment.id,
        kind=kind,
        node_id=node_id,
        actor_id=actor.id if actor is not None else None,
        scanned_at=now,
        recorded_at=now,
        idempotency_key=key,
    )


def start(session: Session, sub: SubOrder, origin: Node, actor: User | None, *, now: datetime) -> Shipment:
    """The shipment of a sub-order handed in at `origin`, its legs planned from `now` and the
    intake recorded as its first scan (collected). Writes only; the intake commits."""
    profile = session.get(SellerProfile, sub.seller_id)
    farm = profile is None or profile.kind != SellerKind.MERCHANT
    found = network.route(session, origin, sub.order, farm=farm)
    destination = sub.order.pickup_node_id if not found.to_door else None
    shipment = Shipment(
        sub_order_id=sub.id,
        flow=found.flow,
        origin_node_id=origin.id,
        destination_node_id=destination,
        current_node_id=origin.id,
        status=ShipmentStatus.READY if not found.hops else ShipmentStatus.AT_ORIGIN,
    )
    planned = _plan(found, origin, now)
    for seq, ((a, b), leg) in enumerate(zip(found.hops, planned.legs, strict=True), start=1):
        shipment.legs.append(
            Leg(
                seq=seq,
                from_node_id=a.id,
                to_node_id=b.id if b is not None else None,
                planned_depart_at=leg.depart_at,
                planned_arrive_at=leg.arrive_at,
            )
        )
    shipment.eta_at = planned.ready_at
    session.add(shipment)
    session.flush()
    if not found.hops and actor is not None:  # handed in where its buyer collects it
        _move(session, sub, S.IN_TRANSIT, actor, now, f"collected:{sub.number}")
        _move(session, sub, S.READY_FOR_PICKUP, actor, now, f"collected:{sub.number}")
    session.add(_own_scan(shipment, ScanKind.COLLECTED, origin.id, actor, now, f"collected:{sub.number}"))
    return shipment


# A scan touches the sub-order, its shipment and legs, and its lots: their other relationships
# (the order's payments and lines, the products' photos and certifications, …) load only if read.
LEAN = lazyload("*")


def shipment_of(session: Session, sub: SubOrder) -> Shipment | None:
    return session.scalar(
        select(Shipment).where(Shipment.sub_order_id == sub.id).options(lazyload(Shipment.sub_order))
    )


def _label(raw: Any) -> str:
    """A parcel label as scanned or typed: the sub-order's number."""
    text = str(raw or "").strip().upper()[:40]
    if not text:
        raise ValidationError(_("Scan or type the parcel's label."), field_errors={"label": [_("Required.")]})
    return text


def _shipment(session: Session, label: str) -> tuple[Shipment, SubOrder]:
    sub = session.scalar(
        select(SubOrder).where(SubOrder.number == label).with_for_update(of=SubOrder).options(LEAN)
    )
    shipment = shipment_of(session, sub) if sub is not None else None
    if sub is None or shipment is None:
        raise NotFound(_("No parcel has the label %(label)s.", label=label))
    return shipment, sub


def _next_leg(shipment: Shipment) -> Leg | None:
    return next((leg for leg in shipment.legs if leg.status != LegStatus.ARRIVED), None)


def _repeat(session: Session, shipment: Shipment, kind: ScanKind, node_id: int | None) -> Scan | None:
    """The scan this one repeats: the same move at the same node already made."""
    legs = shipment.legs
    if kind == ScanKind.DEPARTED:
        done = [leg for leg in legs if leg.from_node_id == node_id and leg.status != LegStatus.PLANNED]
    elif kind == ScanKind.ARRIVED:
        done = [leg for leg in legs if leg.to_node_id == node_id and leg.status == LegStatus.ARRIVED]
    elif kind == ScanKind.DELIVERED:
        done = [leg for leg in legs if leg.to_node_id is None and leg.status == LegStatus.ARRIVED]
    else:
        return None
    if not done:
        return None
    return session.scalar(
        select(Scan)
        .where(Scan.shipment_id == shipment.id, Scan.kind == kind, Scan.leg_id == done[-1].id)
        .order_by(Scan.id)
    )


def _expected(session: Session, shipment: Shipment) -> str:
    leg = _next_leg(shipment)
    if leg is None:
        return _("The parcel has reached its end: nothing more to scan.")
    node = session.get(Node, leg.from_node_id if leg.status == LegStatus.PLANNED else leg.to_node_id)
    if leg.status == LegStatus.PLANNED:
        assert node is not None
        return _("Next: it leaves %(node)s.", node=node.name)
    if node is None:
        return _("Next: it is delivered at the door.")
    return _("Next: it arrives at %(node)s.", node=node.name)


def _fits(leg: Leg | None, kind: ScanKind, node_id: int | None) -> bool:
    """Whether scanning `kind` at `node_id` is the parcel's next move (its next leg `leg`)."""
    if leg is None:
        return False
    if kind == ScanKind.DEPARTED:
        return leg.status == LegStatus.PLANNED and leg.from_node_id == node_id
    if kind == ScanKind.ARRIVED:
        return leg.status == LegStatus.DEPARTED and node_id is not None and leg.to_node_id == node_id
    if kind == ScanKind.DELIVERED:
        return leg.status == LegStatus.DEPARTED and leg.to_node_id is None
    return False


def _vehicle(session: Session, raw: Any, kind: ScanKind, node: Node | None) -> Vehicle | None:
    """The vehicle a departure names: an active vehicle of the node scanned at; None when none
    is named. Anything else is refused (ValidationError on `vehicle_id`), before anything is
    written."""
    if raw in (None, ""):
        return None

    def refuse(message: Any) -> ValidationError:
        return ValidationError(message, field_errors={"vehicle_id": [message]})

    if kind != ScanKind.DEPARTED:
        raise refuse(_("Only a departure names the vehicle it leaves on."))
    text = str(raw).strip()
    vehicle = (
        session.get(Vehicle, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else None
    )
    if vehicle is None or node is None or vehicle.node_id != node.id:
        raise refuse(_("No such vehicle at %(node)s.", node=node.name if node is not None else "-"))
    if not vehicle.active:
        raise refuse(_("Vehicle %(plate)s is off the road.", plate=vehicle.plate))
    return vehicle


def _move(session: Session, sub: SubOrder, target: OrderStatus, actor: User, at: datetime, key: str) -> None:
    """The sub-order follows its parcel, where its state machine allows (a sub-order waiting
    for an after-sale decision keeps its state; the parcel moves on)."""
    if states.can_move(sub.status, target, {Party.STAFF}):
        states.apply(session, sub, target, party=Party.STAFF, actor=actor, details={"scan_key": key}, now=at)


def record_scan(
    session: Session,
    actor: User | None,
    label: Any,
    kind: Any,
    key: Any,
    *,
    node_id: Any = None,
    scanned_at: datetime | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    note: str = "",
    vehicle_id: Any = None,
    now: datetime | None = None,
) -> ScanResult:
    """Record one scan of a parcel (see the module's docstring); commits. `vehicle_id`: the
    vehicle a departure leaves on (optional)."""
    actor = authz.require_user(actor)
    key = check_idempotency_key(key)
    try:
        kind = ScanKind(str(kind))
    except ValueError:
        raise ValidationError(_("Unknown scan."), field_errors={"kind": [_("Unknown scan.")]}) from None
    if kind == ScanKind.COLLECTED:
        raise IllegalScan(_("A parcel is collected by recording its intake."))
    label = _label(label)
    now = now or clock.now()
    at = min(scanned_at or now, now)  # an offline scan happened earlier; never in the future
    done = session.scalar(select(Scan).where(Scan.idempotency_key == key))
    if done is not None:
        if done.shipment.sub_order.number != label or done.kind != kind:
            raise ScanConflict(_("This scan was already used for another parcel. Please scan again."))
        return ScanResult(done, applied=False)
    shipment, sub = _shipment(session, label)
    node = None
    if node_id not in (None, ""):
        try:
            node = session.get(Node, int(node_id))
        except (TypeError, ValueError):
            node = None
        if node is None:
            session.rollback()
            raise NotFound(_("No such node."))
    try:
        result = apply_scan(
            session,
            actor,
            shipment,
            sub,
            kind,
            node,
            key,
            at=at,
            now=now,
            latitude=latitude,
            longitude=longitude,
            note=note,
            vehicle_id=vehicle_id,
        )
    except Exception:
        session.rollback()
        raise
    session.commit()
    return result


def apply_scan(
    session: Session,
    actor: User,
    shipment: Shipment,
    sub: SubOrder,
    kind: ScanKind,
    node: Node | None,
    key: str,
    *,
    at: datetime,
    now: datetime,
    latitude: float | None = None,
    longitude: float | None = None,
    note: str = "",
    vehicle_id: Any = None,
) -> ScanResult:
    """One scan of a locked sub-order's shipment, written in the caller's transaction (the
    caller commits, or rolls back on an error)."""
    leg = _next_leg(shipment)
    if kind == ScanKind.DELIVERED and node is None and leg is not None and leg.to_node_id is None:
        node_for_staff = session.get(Node, leg.from_node_id)  # the courier is the DC's staff
    else:
        node_for_staff = node
    if node_for_staff is None:
        raise ValidationError(_("Choose the node you scan at."), field_errors={"node_id": [_("Required.")]})
    if not authz.works_at(actor, node_for_staff):
        raise Forbidden(_("Only the staff of %(node)s scan parcels there.", node=node_for_staff.name))
    returning = shipment.status in (ShipmentStatus.RETURNING, ShipmentStatus.RETURNED)
    if sub.status in (S.CANCELLED, S.REFUNDED) and not returning:
        raise IllegalScan(_("This order was cancelled or refunded: set the parcel aside for return."))
    node_ref = node.id if node is not None else None
    if kind != ScanKind.EXCEPTION and not _fits(leg, kind, node_ref):
        # Not the next move: the same move scanned again changes nothing; anything else is out
        # of order. (The next move is checked first: a returning parcel passes nodes it passed.)
        repeated = _repeat(session, shipment, kind, node_ref)
        if repeated is not None:
            return ScanResult(repeated, applied=False)
        raise IllegalScan(_expected(session, shipment))
    vehicle = _vehicle(session, vehicle_id, kind, node)
    scan = Scan(
        shipment_id=shipment.id,
        kind=kind,
        node_id=node_ref,
        actor_id=actor.id,
        scanned_at=at,
        recorded_at=now,
        latitude=latitude,
        longitude=longitude,
        note=str(note or "")[:200],
        idempotency_key=key,
    )
    if kind == ScanKind.DEPARTED:
        assert leg is not None
        leg.status, leg.departed_at = LegStatus.DEPARTED, at
        shipment.current_node_id = None
        if vehicle is not None:
            leg.vehicle_id = vehicle.id
        if returning:
            pass  # the sub-order was refunded: only the parcel moves, back to its origin
        elif leg.to_node_id is None:
            shipment.status = ShipmentStatus.OUT_FOR_DELIVERY
            _move(session, sub, S.IN_TRANSIT, actor, at, key)
            _move(session, sub, S.OUT_FOR_DELIVERY, actor, at, key)
        else:
            shipment.status = ShipmentStatus.MOVING
            _move(session, sub, S.IN_TRANSIT, actor, at, key)
    elif kind == ScanKind.ARRIVED:
        assert leg is not None
        leg.status, leg.arrived_at = LegStatus.ARRIVED, at
        shipment.current_node_id = node_ref
        if returning:
            last = _next_leg(shipment) is None
            shipment.status = ShipmentStatus.RETURNED if last else ShipmentStatus.RETURNING
        elif _next_leg(shipment) is None:  # the pickup node
            shipment.status = ShipmentStatus.READY
            _move(session, sub, S.READY_FOR_PICKUP, actor, at, key)
        else:
            shipment.status = ShipmentStatus.AT_NODE
    elif kind == ScanKind.DELIVERED:
        assert leg is not None
        leg.status, leg.arrived_at = LegStatus.ARRIVED, at
        shipment.status = ShipmentStatus.DELIVERED
        sub.delivered_at = at
    scan.leg_id = leg.id if leg is not None and kind != ScanKind.EXCEPTION else None
    if kind != ScanKind.EXCEPTION:
        shipment.flagged_at = None  # it moved: stuck no more (services/logistics/exceptions.py)
    session.add(scan)
    session.flush()
    if kind == ScanKind.DEPARTED and leg is not None:
        pallets.leg_departed(session, leg)
    trace.record_scan(session, shipment, scan)
    return ScanResult(scan, applied=True)


def handed_over(session: Session, sub: SubOrder, actor: User | None, *, now: datetime) -> None:
    """The parcel left its pickup node with its recipient (services/parcels.py, or the staff's
    completion with the code): its shipment ends, delivered, with that as its last scan. Written
    in the caller's transaction; nothing for a sub-order with no shipment."""
    shipment = shipment_of(session, sub)
    if shipment is None or shipment.status == ShipmentStatus.DELIVERED:
        return
    shipment.status = ShipmentStatus.DELIVERED
    sub.delivered_at = now
    key = f"handed-over:{sub.number}"
    scan = _own_scan(shipment, ScanKind.DELIVERED, shipment.current_node_id, actor, now, key)
    session.add(scan)
    session.flush()
    trace.record_scan(session, shipment, scan)


def send_back(session: Session, sub: SubOrder, *, now: datetime) -> Shipment | None:
    """The parcel of a returned sub-order (not collected at its pickup node: services/parcels.py)
    goes back to its origin as reverse legs, the way it came, planned from `now`; its scans move
    only the parcel (the sub-order was refunded). Written in the caller's transaction; None for a
    sub-order with no shipment or a parcel not waiting at a node."""
    shipment = shipment_of(session, sub)
    if shipment is None or shipment.current_node_id is None:
        return None
    if shipment.status not in (ShipmentStatus.READY, ShipmentStatus.AT_NODE):
        return None
    forward = [leg for leg in shipment.legs if not leg.reverse and leg.status == LegStatus.ARRIVED]
    back = [(leg.to_node_id, leg.from_node_id) for leg in reversed(forward) if leg.to_node_id is not None]
    # From where it waits, only over the legs it travelled (it may be returned from a node on the way).
    while back and back[0][0] != shipment.current_node_id:
        back.pop(0)
    if not back:
        return None
    nodes = {
        n.id: n for n in session.scalars(select(Node).where(Node.id.in_({a for pair in back for a in pair})))
    }
    hops = schedule.load_stops([(nodes[a], nodes[b]) for a, b in back])
    planned = schedule.plan(hops, origin=hops[0][0], at_time=now, ordered=False)
    seq = max(leg.seq for leg in shipment.legs)
    for i, ((a, b), leg) in enumerate(zip(back, planned.legs, strict=True), start=1):
        shipment.legs.append(
            Leg(
                seq=seq + i,
                from_node_id=a,
                to_node_id=b,
                reverse=True,
                planned_depart_at=leg.depart_at,
                planned_arrive_at=leg.arrive_at,
            )
        )
    shipment.status, shipment.eta_at = ShipmentStatus.RETURNING, planned.legs[-1].arrive_at
    shipment.flagged_at = None  # a new plan: the flag-stuck-parcels job judges it afresh
    session.flush()
    return shipment


MAX_BATCH = 200  # scans a device sends at once (an offline day's backlog comes in several)


@dataclass(frozen=True)
class BatchItem:
    """One scan of a batch: applied, a repeat of one made already, or refused with its error."""

    index: int
    result: ScanResult | None
    error: ServiceError | None


def record_batch(
    session: Session, actor: User | None, items: list[dict[str, Any]], *, now: datetime | None = None
) -> list[BatchItem]:
    """A device's queued scans, in the order it made them, each applied on its own (one refused
    scan does not stop the others; the device keeps only the refused ones). Each item holds
    record_scan's arguments: label, kind, idempotency_key, node_id, scanned_at, latitude,
    longitude, note, vehicle_id."""
    actor = authz.require_user(actor)
    if not items or len(items) > MAX_BATCH:
        raise ValidationError(
            _("Send from 1 to %(n)d scans at a time.", n=MAX_BATCH), field_errors={"scans": [_("Too many.")]}
        )
    out: list[BatchItem] = []
    for index, item in enumerate(items):
        try:
            result = record_scan(
                session,
                actor,
                item.get("label"),
                item.get("kind"),
                item.get("idempotency_key"),
                node_id=item.get("node_id"),
                scanned_at=item.get("scanned_at"),
                latitude=item.get("latitude"),
                longitude=item.get("longitude"),
                note=item.get("note") or "",
                vehicle_id=item.get("vehicle_id"),
                now=now,
            )
        except ServiceError as exc:
            session.rollback()
            out.append(BatchItem(index, None, exc))
        else:
            out.append(BatchItem(index, result, None))
    return out


def visible_shipment(session: Session, actor: User | None, label: Any) -> Shipment:
    """The shipment of parcel `label` for those who follow it: its buyer, the agent who placed
    it, its seller, the staff of any node on its way, admins; NotFound for anyone else."""
    actor = authz.require_user(actor)
    sub = session.scalar(select(SubOrder).where(SubOrder.number == _label(label)))
    shipment = shipment_of(session, sub) if sub is not None else None
    if sub is None or shipment is None:
        raise NotFound(_("No parcel has the label %(label)s.", label=str(label)[:40]))
    order = sub.order
    if actor.id in (order.buyer_id, order.placed_by_id, sub.seller_id) or authz.is_admin(actor):
        return shipment
    ids = {shipment.origin_node_id} | {leg.to_node_id for leg in shipment.legs if leg.to_node_id}
    nodes = session.scalars(select(Node).where(Node.id.in_(sorted(ids))))
    if any(authz.works_at(actor, node) for node in nodes):
        return shipment
    raise NotFound(_("No parcel has the label %(label)s.", label=str(label)[:40]))


def timeline(session: Session, shipment: Shipment) -> list[Scan]:
    """Every scan of the shipment in the order they happened."""
    return list(
        session.scalars(
            select(Scan).where(Scan.shipment_id == shipment.id).order_by(Scan.scanned_at, Scan.id)
        )
    )
