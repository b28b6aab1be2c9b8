"""The demo's cold chain: a refrigerated van and a cold-store logger at 梅县's county center, with a
day of readings and one short excursion (issue 12, item 7).

Through the services, as the people who would:
  - 梅县's county staff (the demo's 李敏) register two chilled loggers (services/logistics/
    coldchain.py register_logger): MX-VAN-01 in the center's refrigerated van 粤M·C0501 (a vehicle
    row: no service makes vehicles yet, the route plans will) and MX-COLD-01 in the center's cold
    store;
  - each logger sends a day of readings every 10 minutes (ingest_batch with its own token's
    identity): the van holds 2-4 ℃ but for 50 minutes at 6-7.5 ℃ (a door left open on a stop:
    beyond the 30-minute grace, so an excursion, its lots marked and the staff alerted); the
    store holds 1.5-3.5 ℃ with a 20-minute spike (within grace: nothing).
The day is the last 24 hours, unless a demo parcel with a lot left the center in the history: then
the van carries that leg (as its route plan would say), the day runs to 12 hours after it left
and the excursion spans its departure: it would mark that parcel's lot if it were chilled goods (an
excursion marks the lots kept in the range its logger watches; the demo's are room-temperature
pomelos, so the trace page shows the van's readings and no excursion).

Idempotent: a logger is found again by its serial, the van by its plate, and a logger that has
readings gets none again: a second run adds and changes nothing.
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from domain import (
    Leg,
    Lot,
    Node,
    NodeKind,
    Role,
    RoleGrant,
    Shipment,
    TemperatureLogger,
    TemperatureReading,
    User,
    Vehicle,
    VehicleKind,
    clock,
)
from services import notify
from services.logistics import coldchain

COUNTY = "441403"  # 梅州市梅县区
PLATE = "粤M·C0501"
VAN_SERIAL = "MX-VAN-01"
STORE_SERIAL = "MX-COLD-01"
STEP = timedelta(minutes=10)


def _van(session: Session, center: Node) -> tuple[Vehicle, int]:
    found = session.scalar(select(Vehicle).where(Vehicle.plate == PLATE))
    if found is not None:
        return found, 0
    van = Vehicle(
        node_id=center.id,
        plate=PLATE,
        kind=VehicleKind.REFRIGERATED,
        capacity_kg=1500,
        capacity_l=8000,
        shift_start=time(6, 0),
        shift_end=time(18, 0),
        created_at=clock.now(),
    )
    session.add(van)
    session.commit()
    return van, 1


def _logger(session: Session, staff: User, serial: str, place: str) -> tuple[TemperatureLogger, int]:
    found = session.scalar(select(TemperatureLogger).where(TemperatureLogger.serial == serial))
    if found is not None:
        return found, 0
    made = coldchain.register_logger(session, staff, serial=serial, place=place, storage_class="chilled")
    return made.logger, 1


def _day(session: Session, center: Node, van: Vehicle) -> tuple[datetime, datetime | None]:
    """The day's end, and when the van's excursion begins: around the departure of the latest
    demo leg with a lot from the center if one left it (the van carries it), else six hours ago."""
    now = clock.now()
    leg = session.scalar(
        select(Leg)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .where(
            Leg.from_node_id == center.id,
            Leg.departed_at.is_not(None),
            Leg.departed_at > now - timedelta(days=300),
            exists(select(Lot.id).where(Lot.sub_order_id == Shipment.sub_order_id)),
        )
        .order_by(Leg.departed_at.desc())
        .limit(1)
    )
    if leg is not None and leg.departed_at is not None and leg.vehicle_id in (None, van.id):
        leg.vehicle_id = van.id
        session.commit()
        # The doors open for loading 20 minutes before it leaves: the run covers the departure.
        return min(now, leg.departed_at + timedelta(hours=12)), leg.departed_at - 2 * STEP
    return now, None


def _readings(
    serial: str, end: datetime, excursion: tuple[datetime, int, float] | None, base: float
) -> list[dict]:  # type: ignore[type-arg]
    """144 readings, every 10 minutes up to `end`: `base` ± 1 ℃ over the day, and the excursion's
    (start, readings, ℃) if any."""
    start = end - 143 * STEP
    items = []
    for i in range(144):
        at = start + i * STEP
        celsius = round(base + math.sin(i / 144 * 2 * math.pi), 1)
        if excursion is not None:
            first, count, value = excursion
            k = round((at - first) / STEP)
            if 0 <= k < count:
                celsius = round(value + 0.5 * math.sin(k), 1)
        items.append({"logger": serial, "at": at.isoformat(), "celsius": celsius})
    return items


def load_coldchain(session: Session, *, channel: Any = None, pickup_keys: Any = None) -> dict[str, int]:
    """The van, the loggers and their day; the excursion's alert goes out through `channel` now,
    as the send-notifications job would send it."""
    report = {"cold_chain_vehicles": 0, "cold_chain_loggers": 0, "cold_chain_readings": 0}
    center = session.scalar(
        select(Node).where(Node.kind == NodeKind.COUNTY_CENTER, Node.county_code == COUNTY)
    )
    staff = session.scalar(
        select(User)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == Role.COUNTY_STAFF, RoleGrant.county_code == COUNTY)
        .order_by(User.id)
        .limit(1)
    )
    if center is None or staff is None or not center.has_cold_storage:
        return report
    van, made = _van(session, center)
    report["cold_chain_vehicles"] += made
    in_van, made = _logger(session, staff, VAN_SERIAL, f"vehicle:{van.id}")
    report["cold_chain_loggers"] += made
    in_store, made = _logger(session, staff, STORE_SERIAL, f"node:{center.id}")
    report["cold_chain_loggers"] += made
    end, on_leg = _day(session, center, van)
    plans = (
        (in_van, (on_leg or end - timedelta(hours=6), 5, 7.0), 3.0),  # 50 minutes at ~7 ℃
        (in_store, (end - timedelta(hours=3), 2, 6.0), 2.5),  # 20 minutes: within the grace
    )
    for logger, excursion, base in plans:
        if session.scalar(
            select(TemperatureReading.id).where(TemperatureReading.logger_id == logger.id).limit(1)
        ):
            continue
        items = _readings(logger.serial, end, excursion, base)
        result = coldchain.ingest_batch(session, coldchain.Source(logger=logger), items)
        report["cold_chain_readings"] += result.accepted
    if channel is not None and report["cold_chain_readings"]:
        notify.send_pending(session, channel, pickup_keys)
    return report
