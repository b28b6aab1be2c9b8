"""A lot's journey as a tamper-evident chain, its public trace and its EPCIS export (issue 12,
item 8).

Every event of a lot is appended to its SM3 hash chain (services/logistics/chain.py) in the
transaction that makes it: `received` when the intake accepts the line (services/intake.py), then
each scan of the lot's parcel — departed, arrived, delivered, exception (services/logistics/
scans.py). A `LotEvent` row keeps the canonical JSON that was hashed, the hash before it and its
own; `Lot.chain_head` keeps the newest hash apart from the rows. The events name no person (no
names, phones or notes): the chain is public.

`verify_lot` checks two things and the trace page says which failed:
- the chain: every event links from the lot's genesis and ends at `chain_head` (an event changed,
  removed, inserted or reordered breaks it where it happened);
- the sources: each event still says what its source row says now (the lot for `received`, the
  scan for the others), so a scan row edited after the fact is caught though the chain holds.

`lot_trace` is what the public page `/t/<code>` and `GET /api/v1/trace/<code>` show; `epcis`
turns the chain into a GS1 EPCIS 2.0 JSON-LD document of ObjectEvents (one per event: business
step, disposition, read point, the lot as an LGTIN-less class with its quantity in kg).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from domain import Excursion, Lot, LotEvent, Node, Scan, ScanKind, Shipment, StorageClass, User, clock
from services.errors import NotFound
from services.i18n import _
from services.logistics import chain

RECEIVED = "received"
EXCURSION = "excursion"  # a cold-chain excursion of a logger whose vehicle or store held the lot
# EPCIS 2.0 Core Business Vocabulary: what each event is in a partner's system.
BIZ_STEP = {
    RECEIVED: "commissioning",
    ScanKind.DEPARTED.value: "departing",
    ScanKind.ARRIVED.value: "arriving",
    ScanKind.DELIVERED.value: "retail_selling",
    ScanKind.EXCEPTION.value: "inspecting",
    EXCURSION: "storing",
}
DISPOSITION = {
    RECEIVED: "active",
    ScanKind.DEPARTED.value: "in_transit",
    ScanKind.ARRIVED.value: "in_progress",
    ScanKind.DELIVERED.value: "completeness_verified",
    ScanKind.EXCEPTION.value: "damaged",
    EXCURSION: "needs_replacement",
}
# Where the platform's own identifiers live (read points, lots): a URI under the product's domain.
URN = "urn:yuenongtong"


def _node(node: Node | None) -> dict[str, Any] | None:
    if node is None:
        return None  # at the buyer's door
    return {"id": node.id, "name": node.name, "division": node.division_code, "kind": node.kind.value}


def _received_event(lot: Lot) -> dict[str, Any]:
    return {
        "type": RECEIVED,
        "lot": lot.code,
        "at": lot.received_at,
        "node": _node(lot.node),
        "product": lot.product_id,
        "grade": lot.grade.value,
        "weight_g": lot.weight_g,
        "quantity": lot.quantity,
    }


def _scan_event(lot: Lot, scan: Scan, node: Node | None) -> dict[str, Any]:
    return {
        "type": scan.kind.value,
        "lot": lot.code,
        "at": scan.scanned_at,
        "node": _node(node),
        "scan": scan.id,
    }


def _excursion_event(lot: Lot, excursion: Excursion) -> dict[str, Any]:
    logger = excursion.logger
    return {
        "type": EXCURSION,
        "lot": lot.code,
        "at": excursion.started_at,
        "excursion": excursion.id,
        "logger": logger.serial,
        "node": _node(logger.node) if logger.vehicle_id is None else None,
        "vehicle": logger.vehicle_id,
        "storage_class": excursion.storage_class.value,
        # As first known: later readings may lengthen it (the trace page shows it as it is now).
        "minutes": excursion.minutes,
        "worst_tenths": excursion.worst_tenths,
    }


SOURCE_KEYS = ("type", "at", "grade", "weight_g", "quantity", "scan", "excursion", "logger", "vehicle")


def _source_fields(event: dict[str, Any]) -> dict[str, Any]:
    """What an event says of its source row that never changes (a node's name may change, an
    excursion may grow as late readings come in; the event keeps what was known)."""
    node = event.get("node") or {}
    return {k: event.get(k) for k in SOURCE_KEYS} | {"node": node.get("id")}


def _append(session: Session, lot: Lot, event: dict[str, Any], *, scan_id: int | None = None) -> LotEvent:
    last = session.scalar(
        select(LotEvent).where(LotEvent.lot_id == lot.id).order_by(LotEvent.seq.desc()).limit(1)
    )
    prev = last.hash if last is not None else chain.genesis(lot.code)
    body = chain.canonical(event).decode("utf-8")
    row = LotEvent(
        lot_id=lot.id,
        seq=(last.seq + 1) if last is not None else 1,
        kind=str(event["type"]),
        scan_id=scan_id,
        happened_at=event["at"],
        body=body,
        prev_hash=prev,
        hash=chain.link(prev, event),
        recorded_at=clock.now(),
    )
    session.add(row)
    lot.chain_head = row.hash
    return row


def record_received(session: Session, lots: Iterable[Lot]) -> None:
    """The first event of each lot the intake made (in the intake's transaction)."""
    for lot in lots:
        _append(session, lot, _received_event(lot))
    session.flush()


def record_scan(session: Session, shipment: Shipment, scan: Scan) -> None:
    """A scan of a parcel, appended to the chain of every lot in it (in the scan's transaction;
    the sub-order's row lock keeps two scans of one parcel from interleaving)."""
    if scan.kind == ScanKind.COLLECTED:
        return  # the intake's own hand-in: the lots' `received` event says it
    lots = session.scalars(
        select(Lot).where(Lot.sub_order_id == shipment.sub_order_id).order_by(Lot.id).options(lazyload("*"))
    ).all()
    if not lots:
        return
    node = session.get(Node, scan.node_id) if scan.node_id is not None else None
    for lot in lots:
        _append(session, lot, _scan_event(lot, scan, node), scan_id=scan.id)
    session.flush()


def record_excursion(session: Session, excursion: Excursion, lot_ids: Iterable[int]) -> None:
    """A cold-chain excursion, appended to the chain of each lot it newly marks (in the
    ingestion's transaction: services/logistics/coldchain.py)."""
    ids = sorted(set(lot_ids))
    if not ids:
        return
    lots = session.scalars(select(Lot).where(Lot.id.in_(ids)).options(lazyload("*"))).all()
    for lot in lots:
        _append(session, lot, _excursion_event(lot, excursion))
    session.flush()


# --- reading it back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One event as the trace page shows it."""

    kind: str
    at: datetime
    node: str  # the node's name when the event was recorded ("" at the door)
    division: str
    hash: str


@dataclass(frozen=True)
class Check:
    """The verdict of `verify_lot`: the chain's own check and the sources' check."""

    chain: chain.Verification
    source_mismatch_at: int | None  # the first event (0-based) that no longer says what its source says
    head: str | None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.source_mismatch_at is None

    @property
    def message(self) -> Any:
        if not self.chain.ok:
            return self.chain.message
        if self.source_mismatch_at is not None:
            return _(
                "The chain holds, but event %(number)s no longer matches its record.",
                number=self.source_mismatch_at + 1,
            )
        return self.chain.message


def _events(session: Session, lot: Lot) -> Sequence[LotEvent]:
    return session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id).order_by(LotEvent.seq)).all()


def verify_lot(session: Session, lot: Lot, events: Sequence[LotEvent] | None = None) -> Check:
    events = _events(session, lot) if events is None else events
    verdict = chain.verify(lot.code, events, head=lot.chain_head)
    scan_ids = [e.scan_id for e in events if e.scan_id is not None]
    scans_by_id = (
        {s.id: s for s in session.scalars(select(Scan).where(Scan.id.in_(scan_ids)))} if scan_ids else {}
    )
    nodes: dict[int, Node] = {}
    mismatch = None
    for i, row in enumerate(events):
        try:
            stored = _source_fields(json.loads(chain.canonical(row.event)))
        except (ValueError, chain.NotCanonical):
            mismatch = i
            break
        if row.kind == RECEIVED:
            source = _received_event(lot)
        elif row.kind == EXCURSION:
            excursion = session.get(Excursion, row.event.get("excursion"))
            if excursion is None:
                # Recomputed away by late readings (coldchain.recompute): derived data, not a
                # hand-over; the chain itself still holds what was known then.
                continue
            source = _excursion_event(lot, excursion)
        elif row.scan_id is not None and row.scan_id in scans_by_id:
            scan = scans_by_id[row.scan_id]
            if scan.node_id is not None and scan.node_id not in nodes:
                nodes[scan.node_id] = session.get(Node, scan.node_id)  # type: ignore[assignment]
            source = _scan_event(lot, scan, nodes.get(scan.node_id) if scan.node_id else None)
        else:
            mismatch = i  # its scan is gone
            break
        if stored != _source_fields(json.loads(chain.canonical(source))):
            mismatch = i
            break
    return Check(verdict, mismatch, lot.chain_head)


@dataclass(frozen=True)
class Temperatures:
    """The lot's temperatures on its way (the trace page's chart): every reading of the loggers
    of the vehicles and cold stores it was in while it was there, the range its storage class
    allows, and the excursions that marked it."""

    readings: list[Any]  # coldchain.LotReading, in time order
    low_tenths: int | None
    high_tenths: int | None
    excursions: list[Excursion]

    @property
    def coldest(self) -> int | None:
        return min((r.celsius_tenths for r in self.readings), default=None)

    @property
    def warmest(self) -> int | None:
        return max((r.celsius_tenths for r in self.readings), default=None)


@dataclass(frozen=True)
class LotTrace:
    """The public trace of a lot: what services/intake.trace says, the farmer (masked), harvest
    and certifications, every event of the chain (in time order) and its check, and its
    temperatures."""

    base: Any  # services.intake.Trace
    farmer: str
    harvest_start: date | None
    harvest_end: date | None
    certifications: list[tuple[str, str]]  # (kind, number)
    steps: list[Step]
    check: Check
    temperatures: Temperatures


def _lot(session: Session, code: Any) -> Lot:
    from services.intake import normal_code

    normal = normal_code(code)
    found = select(Lot).where(Lot.code == normal).options(lazyload("*"))
    lot = session.scalar(found) if normal else None
    if lot is None:
        raise NotFound(_("No lot has this code."))
    return lot


def lot_trace(session: Session, code: Any) -> LotTrace:
    from services import intake
    from services.catalog import get_seller_profile, seller_name
    from services.errors import ServiceError
    from services.logistics import coldchain, readings
    from services.villagers import mask_name

    lot = _lot(session, code)
    base = intake.trace(session, lot.code)
    events = _events(session, lot)
    steps = []
    for row in events:
        node = row.event.get("node") or {}
        steps.append(
            Step(row.kind, row.happened_at, node.get("name", ""), node.get("division", ""), row.hash)
        )
    steps.sort(key=lambda s: s.at)  # an excursion is chained when its readings come in, maybe later
    product = lot.product
    try:
        shop: str | None = get_seller_profile(session, lot.seller_id).shop_name
    except ServiceError:
        shop = None
    seller = session.get(User, lot.seller_id)
    farmer = shop or mask_name(seller_name(seller, None) if seller is not None else "")
    limits = readings.STORAGE_LIMITS.get(StorageClass(base.storage_class), readings.Limits(None, None))
    return LotTrace(
        base=base,
        farmer=farmer,
        harvest_start=product.harvest_start,
        harvest_end=product.harvest_end,
        certifications=[(c.kind.value, c.number) for c in product.certifications],
        steps=steps,
        check=verify_lot(session, lot, events),
        temperatures=Temperatures(
            readings=coldchain.readings_for_lot(session, lot),
            low_tenths=limits.low_tenths,
            high_tenths=limits.high_tenths,
            excursions=coldchain.excursions_of_lot(session, lot),
        ),
    )


# --- GS1 EPCIS 2.0 ------------------------------------------------------------------------------

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def _iso(at: datetime) -> str:
    return at.astimezone(clock.CHINA).isoformat(timespec="milliseconds")


def _read_point(node: dict[str, Any] | None, door: str) -> dict[str, str]:
    if not node:
        return {"id": door}
    return {"id": f"{URN}:node:{node['id']}"}


ALARM = "ALARM_CONDITION"


def _sensor_element(session: Session, event: dict[str, Any]) -> dict[str, Any]:
    """An excursion as EPCIS sensor data: the logger, the period and the range of temperatures
    measured in it (as known now), flagged as an alarm."""
    excursion = session.get(Excursion, event.get("excursion"))
    device = f"{URN}:logger:{event.get('logger')}"
    if excursion is None:  # recomputed away: what the chain recorded
        worst = (event.get("worst_tenths") or 0) / 10
        return {
            "sensorMetadata": {"deviceID": device},
            "sensorReport": [
                {"type": "Temperature", "value": worst, "uom": "CEL", "exception": "ALARM_CONDITION"}
            ],
        }
    return {
        "sensorMetadata": {
            "deviceID": device,
            "startTime": _iso(excursion.started_at),
            "endTime": _iso(excursion.ended_at),
        },
        "sensorReport": [
            {
                "type": "Temperature",
                "minValue": excursion.min_tenths / 10,
                "maxValue": excursion.max_tenths / 10,
                "uom": "CEL",
                "exception": ALARM,
            }
        ],
    }


def epcis(session: Session, code: Any) -> dict[str, Any]:
    """The lot's events as an EPCIS 2.0 document (JSON-LD): one ObjectEvent per chain event, the
    lot as a quantity of its product class (kg), each event's chain hash as its eventID, and the
    platform's node as read point and business location (`ynt:lot` carries the lot's code)."""
    lot = _lot(session, code)
    events = _events(session, lot)
    product_class = f"{URN}:product:{lot.product_id}"
    door = f"{URN}:door"
    out = []
    for row in events:
        event = row.event
        node = event.get("node")
        at = row.happened_at
        item: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": _iso(at),
            "eventTimeZoneOffset": "+08:00",
            "eventID": f"ni:///sm3;hex={row.hash}",  # RFC 6920 named information: the chain hash
            "action": "ADD" if row.kind == RECEIVED else "OBSERVE",
            "bizStep": BIZ_STEP.get(row.kind, "inspecting"),
            "disposition": DISPOSITION.get(row.kind, "active"),
            "epcList": [],
            "quantityList": [
                {"epcClass": product_class, "quantity": lot.weight_g / 1000, "uom": "KGM"},
            ],
            "readPoint": _read_point(node, door),
            "ynt:lot": lot.code,
        }
        if node:
            item["bizLocation"] = {"id": f"{URN}:node:{node['id']}"}
        if row.kind == EXCURSION:
            item["sensorElementList"] = [_sensor_element(session, event)]
        out.append(item)
    return {
        "@context": [EPCIS_CONTEXT, {"ynt": f"{URN}:epcis:"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(clock.now()),
        "epcisBody": {"eventList": out},
    }
