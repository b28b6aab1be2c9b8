"""The cold chain (issue 12, item 7): loggers, their readings stored and attributed to the lots
aboard, and the excursions that alert staff and mark lots.

Loggers. County staff register the loggers of their county's nodes, DC staff those of their
center (authz.COLD_CHAIN_ACTIONS): a serial, where it is mounted (a node's cold store, or one of
the node's vehicles) and the storage class it watches. The logger's API token is made then and
shown once; only its SHA-256 is kept. A lost (or leaked) token is replaced by a new one
(`new_token`): registering is not repeated, the serial is unique.

Ingestion. Two ways in, both through `ingest`:
* the API (POST /api/v1/readings): a JSON batch (readings.parse_batch, up to
  readings.MAX_BATCH_ITEMS items), authenticated either by the logger's own token (`lgr_…`: it
  sends its own readings only) or by a staff member's API token (a gateway reading out several
  loggers: those the person manages). Bad items (unknown logger, absurd temperature, malformed
  time, a time already stored with another temperature) are reported by index and the good ones
  are kept: partial results.
* a CSV upload by staff (readings.parse_csv: UTF-8, GBK/GB18030 from Chinese Excel, UTF-16):
  all or nothing: one bad row, or an unknown logger, and nothing is written; the message names
  the rows.
A reading already stored (same logger and instant, same temperature) is a duplicate: a re-sent
batch writes nothing and changes nothing.

Excursions. After new readings, each logger's excursions are computed again by
readings.find_excursions over the affected window: from the last in-range reading before the new
ones to the first in-range reading after them (no run crosses an in-range reading, so the window
holds every run the new readings can touch). Excursions are matched by their start: one kept is
updated (and stays acknowledged), one gone is deleted, a new one is created, marks the lots in
the vehicle or store during it (ExcursionLot) and alerts the node's staff (a notification per
person through services/notify.py's outbox, sent by the send-notifications job as SMS). Ambient
loggers have no limits: their readings are stored and charted, never an excursion.

Attribution (`lots_in`). A vehicle's logger's reading at t belongs to the lots whose shipment had
a leg carried by that vehicle under way at t (departed_at ≤ t < arrived_at, or departed and not
arrived); a cold store's to the lots whose shipment was at that node at t: from the intake
(origin) or the arrival of the leg into it, until the departure of the next leg (or, at the end
of the route, the delivery scan there), from the legs' actual times. `readings_for_lot` is the
union over a lot's path, for the trace page's chart.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, lazyload

from domain import (
    Excursion,
    ExcursionLot,
    Leg,
    Lot,
    Node,
    NodeKind,
    NotificationEvent,
    Role,
    RoleGrant,
    Scan,
    ScanKind,
    Shipment,
    StorageClass,
    SubOrder,
    TemperatureLogger,
    TemperatureReading,
    User,
    Vehicle,
    VehicleKind,
    clock,
)
from services import authz, notify
from services.authz import ColdChainAction
from services.errors import Conflict, Forbidden, NotFound, ServiceError, Unauthorized, ValidationError
from services.i18n import _
from services.logistics import readings as rd
from services.logistics import trace

TOKEN_PREFIX = "lgr_"  # noqa: S105 (not a secret: what a logger's token starts with)
MAX_OPEN_LISTED = 200


# --- loggers ------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def place_label(logger: TemperatureLogger) -> str:
    """Where a logger is mounted, as staff read it: a vehicle's plate, or the node's cold store."""
    if logger.vehicle is not None:
        return f"{logger.vehicle.plate}（{logger.node.name}）"
    return f"{logger.node.name} 冷库"


def _managed_nodes(session: Session, user: User) -> list[Node]:
    """The nodes whose loggers `user` may manage (county staff: the county's; DC staff: the DC)."""
    counties = authz.staff_county_codes(user)
    dcs = authz.node_ids(user, Role.DC_STAFF)
    if not counties and not dcs:
        return []
    where: list[Any] = []
    if counties:
        where.append(Node.county_code.in_(counties))
    if dcs:
        where.append(and_(Node.id.in_(dcs), Node.kind == NodeKind.DISTRIBUTION_CENTER))
    nodes = session.scalars(select(Node).where(or_(*where)).order_by(Node.id)).unique()
    return [
        n for n in nodes if authz.may_cold_chain(ColdChainAction.MANAGE, authz.cold_chain_standings(user, n))
    ]


@dataclass(frozen=True)
class Place:
    value: str  # "node:<id>" (its cold store) or "vehicle:<id>"
    label: str


def places_for(session: Session, user: User | None) -> list[Place]:
    """Where `user` may mount a logger: their nodes' cold stores and their nodes' vehicles."""
    user = authz.require_user(user)
    nodes = _managed_nodes(session, user)
    places = [Place(f"node:{n.id}", f"{n.name} 冷库") for n in nodes if n.has_cold_storage]
    if nodes:
        vehicles = session.scalars(
            select(Vehicle)
            .where(Vehicle.node_id.in_([n.id for n in nodes]), Vehicle.active.is_(True))
            .order_by(Vehicle.id)
        ).unique()
        places += [Place(f"vehicle:{v.id}", f"{v.plate}（{v.node.name}）") for v in vehicles]
    return places


def _resolve_place(session: Session, raw: str) -> tuple[Node, Vehicle | None]:
    kind, _sep, ident = (raw or "").partition(":")
    bad = ValidationError(
        _("Choose where the logger is mounted."),
        field_errors={"place": [_("Choose where the logger is mounted.")]},
    )
    if not ident.isdigit() or len(ident) > 12:
        raise bad
    if kind == "vehicle":
        vehicle = session.get(Vehicle, int(ident))
        if vehicle is None:
            raise bad
        return vehicle.node, vehicle
    if kind == "node":
        node = session.get(Node, int(ident))
        if node is None:
            raise bad
        if not node.has_cold_storage:
            msg = _("This node has no cold store.")
            raise ValidationError(msg, field_errors={"place": [msg]})
        return node, None
    raise bad


@dataclass(frozen=True)
class Registered:
    logger: TemperatureLogger
    token: str  # shown once: only its hash is kept


def register_logger(
    session: Session, user: User | None, *, serial: Any, place: str, storage_class: str
) -> Registered:
    """Register a logger at a node or vehicle `user` manages; its token is returned once.
    Registering a serial twice is refused (the first registration's token stands)."""
    user = authz.require_user(user)
    node, vehicle = _resolve_place(session, place)
    authz.require_cold_chain(ColdChainAction.MANAGE, authz.cold_chain_standings(user, node))
    key = rd.logger_key(serial)
    if key is None:
        msg = _("Enter the logger's ID (at most %(max)s characters).", max=rd.MAX_LOGGER_LEN)
        raise ValidationError(msg, field_errors={"serial": [msg]})
    try:
        klass = StorageClass(storage_class)
    except ValueError:
        msg = _("Choose a storage class.")
        raise ValidationError(msg, field_errors={"storage_class": [msg]}) from None
    if vehicle is not None and klass != StorageClass.AMBIENT and vehicle.kind != VehicleKind.REFRIGERATED:
        msg = _("An unrefrigerated vehicle carries no chilled or frozen goods.")
        raise ValidationError(msg, field_errors={"storage_class": [msg]})
    if session.scalar(select(TemperatureLogger.id).where(TemperatureLogger.serial == key)) is not None:
        msg = _("A logger with this ID is already registered.")
        raise Conflict(msg, field_errors={"serial": [msg]})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    logger = TemperatureLogger(
        serial=key,
        node_id=node.id,
        vehicle_id=vehicle.id if vehicle is not None else None,
        storage_class=klass,
        token_hash=_hash(token),
        active=True,
        created_by_id=user.id,
        created_at=clock.now(),
    )
    session.add(logger)
    session.commit()
    return Registered(logger, token)


def new_token(session: Session, user: User | None, logger_id: int) -> Registered:
    """A new API token for a logger (the old one stops working): when the one shown at
    registration was lost, or leaked. Staff of the logger's node only."""
    user = authz.require_user(user)
    logger = session.get(TemperatureLogger, logger_id)
    if logger is None:
        raise NotFound()
    standings = authz.cold_chain_standings(user, logger.node)
    if not standings:
        raise NotFound()
    authz.require_cold_chain(ColdChainAction.MANAGE, standings)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    logger.token_hash = _hash(token)
    session.commit()
    return Registered(logger, token)


def may_manage(user: User | None, logger: TemperatureLogger) -> bool:
    return authz.may_cold_chain(ColdChainAction.MANAGE, authz.cold_chain_standings(user, logger.node))


def require_manager(session: Session, user: User | None) -> User:
    """`user` manages some node's loggers (county or DC staff), else Forbidden: admins read only."""
    user = authz.require_user(user)
    if not _managed_nodes(session, user):
        raise Forbidden()
    return user


def visible_loggers(session: Session, user: User | None) -> list[TemperatureLogger]:
    """The loggers `user` may see: admins all, staff those of the nodes they manage."""
    user = authz.require_user(user)
    stmt = select(TemperatureLogger).order_by(TemperatureLogger.id)
    if not authz.is_admin(user):
        nodes = _managed_nodes(session, user)
        if not nodes:
            raise Forbidden()
        stmt = stmt.where(TemperatureLogger.node_id.in_([n.id for n in nodes]))
    return list(session.scalars(stmt.limit(1000)).unique())


def authenticate_logger(session: Session, secret: str) -> TemperatureLogger | None:
    """The active logger whose token this is, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 256:
        return None
    logger = session.scalar(select(TemperatureLogger).where(TemperatureLogger.token_hash == _hash(secret)))
    return logger if logger is not None and logger.active else None


# --- attribution: which lots were where, when ---------------------------------------------------


@dataclass(frozen=True)
class Stay:
    lot_id: int
    start: datetime
    end: datetime | None  # None: still there


def _overlaps(start_col: Any, end_col: Any, start: datetime, end: datetime) -> Any:
    """[start_col, end_col) meets [start, end] (an end of None: still there)."""
    return and_(start_col <= end, or_(end_col.is_(None), end_col > start))


def lots_in(
    session: Session,
    *,
    vehicle_id: int | None = None,
    node_id: int | None = None,
    start: datetime,
    end: datetime,
) -> list[Stay]:
    """The lots in the vehicle (a leg it carried under way) or in the node (from arrival or intake
    to departure or delivery) at some time in [start, end]: each stay that meets the window. One
    query for a vehicle, two for a node."""
    if (vehicle_id is None) == (node_id is None):
        raise ValueError("one of vehicle_id, node_id")
    stays: list[Stay] = []
    if vehicle_id is not None:
        rows = session.execute(
            select(Lot.id, Leg.departed_at, Leg.arrived_at)
            .join(Shipment, Shipment.id == Leg.shipment_id)
            .join(Lot, Lot.sub_order_id == Shipment.sub_order_id)
            .where(
                Leg.vehicle_id == vehicle_id,
                Leg.departed_at.is_not(None),
                _overlaps(Leg.departed_at, Leg.arrived_at, start, end),
            )
        )
        stays += [Stay(lot_id, a, b) for lot_id, a, b in rows]
        return sorted(stays, key=lambda s: (s.start, s.lot_id))
    leg_in, leg_out = aliased(Leg), aliased(Leg)
    delivered = aliased(Scan)
    left = func.coalesce(leg_out.departed_at, delivered.scanned_at)
    rows = session.execute(
        select(Lot.id, leg_in.arrived_at, left)
        .select_from(leg_in)
        .join(Shipment, Shipment.id == leg_in.shipment_id)
        .join(Lot, Lot.sub_order_id == Shipment.sub_order_id)
        .outerjoin(leg_out, and_(leg_out.shipment_id == leg_in.shipment_id, leg_out.seq == leg_in.seq + 1))
        .outerjoin(
            delivered,
            and_(
                delivered.shipment_id == leg_in.shipment_id,
                delivered.kind == ScanKind.DELIVERED,
                delivered.node_id == node_id,
            ),
        )
        .where(leg_in.to_node_id == node_id, leg_in.arrived_at.is_not(None))
        .where(_overlaps(leg_in.arrived_at, left, start, end))
    )
    stays += [Stay(lot_id, a, b) for lot_id, a, b in rows]
    # At the origin: from the intake until the first leg left.
    rows = session.execute(
        select(Lot.id, Lot.received_at, Leg.departed_at)
        .select_from(Leg)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .join(Lot, Lot.sub_order_id == Shipment.sub_order_id)
        .where(Leg.seq == 1, Leg.from_node_id == node_id)
        .where(_overlaps(Lot.received_at, Leg.departed_at, start, end))
    )
    stays += [Stay(lot_id, a, b) for lot_id, a, b in rows]
    return sorted(stays, key=lambda s: (s.start, s.lot_id))


def lots_of_logger(session: Session, logger: TemperatureLogger, start: datetime, end: datetime) -> list[Stay]:
    if logger.vehicle_id is not None:
        return lots_in(session, vehicle_id=logger.vehicle_id, start=start, end=end)
    return lots_in(session, node_id=logger.node_id, start=start, end=end)


@dataclass(frozen=True)
class LotReading:
    serial: str
    place: str
    at: datetime
    celsius_tenths: int


def lot_path(session: Session, lot: Lot) -> list[tuple[int | None, int | None, datetime, datetime | None]]:
    """Where a lot has been: (vehicle_id, None, …) for a leg under way in a vehicle, (None,
    node_id, …) for a stay at a node, with its start and end (None: still there)."""
    shipment = session.scalar(
        select(Shipment)
        .where(Shipment.sub_order_id == lot.sub_order_id)
        .options(lazyload(Shipment.sub_order))
    )
    if shipment is None:
        return []
    legs = list(shipment.legs)
    if not legs:
        return []
    path: list[tuple[int | None, int | None, datetime, datetime | None]] = [
        (None, legs[0].from_node_id, lot.received_at, legs[0].departed_at)
    ]
    for i, leg in enumerate(legs):
        if leg.departed_at is None:
            break
        if leg.vehicle_id is not None:
            path.append((leg.vehicle_id, None, leg.departed_at, leg.arrived_at))
        if leg.arrived_at is None or leg.to_node_id is None:
            break
        nxt = legs[i + 1] if i + 1 < len(legs) else None
        until = nxt.departed_at if nxt is not None else None
        if nxt is None:
            until = session.scalar(
                select(func.min(Scan.scanned_at)).where(
                    Scan.shipment_id == shipment.id,
                    Scan.kind == ScanKind.DELIVERED,
                    Scan.node_id == leg.to_node_id,
                )
            )
        path.append((None, leg.to_node_id, leg.arrived_at, until))
    return path


def readings_for_lot(session: Session, lot: Lot) -> list[LotReading]:
    """Every reading of the loggers of the vehicles and cold stores the lot was in, while it
    was there, in time order (the trace page's chart)."""
    path = lot_path(session, lot)
    vehicle_ids = {v for v, _n, _a, _b in path if v is not None}
    node_ids = {n for _v, n, _a, _b in path if n is not None}
    if not path:
        return []
    loggers = list(
        session.scalars(
            select(TemperatureLogger).where(
                or_(
                    TemperatureLogger.vehicle_id.in_(vehicle_ids),
                    and_(TemperatureLogger.vehicle_id.is_(None), TemperatureLogger.node_id.in_(node_ids)),
                )
            )
        ).unique()
    )
    conditions = []
    for logger in loggers:
        for v, n, a, b in path:
            if (v is not None and logger.vehicle_id == v) or (
                n is not None and logger.vehicle_id is None and logger.node_id == n
            ):
                window = [TemperatureReading.logger_id == logger.id, TemperatureReading.measured_at >= a]
                if b is not None:
                    window.append(TemperatureReading.measured_at < b)
                conditions.append(and_(*window))
    if not conditions:
        return []
    by_id = {lg.id: lg for lg in loggers}
    rows = session.execute(
        select(
            TemperatureReading.logger_id, TemperatureReading.measured_at, TemperatureReading.celsius_tenths
        )
        .where(or_(*conditions))
        .order_by(TemperatureReading.measured_at, TemperatureReading.logger_id)
    )
    return [LotReading(by_id[i].serial, place_label(by_id[i]), at, t) for i, at, t in rows]


def excursions_of_lot(session: Session, lot: Lot) -> list[Excursion]:
    return list(
        session.scalars(
            select(Excursion)
            .join(ExcursionLot, ExcursionLot.excursion_id == Excursion.id)
            .where(ExcursionLot.lot_id == lot.id)
            .order_by(Excursion.started_at)
        ).unique()
    )


# --- ingestion ----------------------------------------------------------------------------------


@dataclass
class IngestResult:
    accepted: int = 0  # readings stored now
    duplicates: int = 0  # already stored, or repeated within the batch
    errors: list[rd.ItemError | rd.RowError] = field(default_factory=list)
    error_count: int = 0
    excursions: list[Excursion] = field(default_factory=list)  # new ones (alerted)


class Source:
    """Who sends readings: a logger (its own only) or a member of staff (the loggers they manage)."""

    def __init__(self, *, logger: TemperatureLogger | None = None, user: User | None = None) -> None:
        if logger is None and user is None:
            raise Unauthorized()
        self.logger = logger
        self.user = user

    def check(self, session: Session) -> None:
        if self.logger is None:
            user = authz.require_user(self.user)
            if not _managed_nodes(session, user):
                raise Forbidden()

    def refusal(self, logger: TemperatureLogger | None, serial: str) -> Any:
        """Why this source may not send readings for `serial` (None: it may)."""
        if self.logger is not None:
            if logger is None or logger.id != self.logger.id:
                return _("This token sends the readings of logger %(own)s only.", own=self.logger.serial)
            return None
        if logger is None or not authz.may_cold_chain(
            ColdChainAction.MANAGE, authz.cold_chain_standings(self.user, logger.node)
        ):
            return _("Unknown logger %(serial)s, or not one of yours.", serial=serial)
        if not logger.active:
            return _("Logger %(serial)s is switched off.", serial=serial)
        return None


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(TemperatureReading)


def _store(
    session: Session,
    items: Sequence[tuple[int, rd.Reading]],
    loggers: dict[str, TemperatureLogger],
    now: datetime,
) -> tuple[list[tuple[int, rd.Reading]], list[tuple[int, rd.Reading, int]], int]:
    """Insert the readings; returns (the stored, the refused: already stored with another
    temperature (the stored value), the number already stored as they are)."""
    if not items:
        return [], [], 0
    rows = [
        {
            "logger_id": loggers[r.logger_id].id,
            "measured_at": r.at,
            "celsius_tenths": r.celsius_tenths,
            "recorded_at": now,
        }
        for _i, r in items
    ]
    stored: set[tuple[int, datetime]] = set()
    for chunk in range(0, len(rows), 5000):
        stmt = (
            _insert(session)
            .on_conflict_do_nothing(index_elements=["logger_id", "measured_at"])
            .returning(TemperatureReading.logger_id, TemperatureReading.measured_at)
        )
        result = session.execute(stmt, rows[chunk : chunk + 5000])
        stored.update((lid, at.astimezone(UTC)) for lid, at in result.all())
    new = [(i, r) for i, r in items if (loggers[r.logger_id].id, r.at) in stored]
    if len(new) == len(items):
        return new, [], 0
    clashes: list[tuple[int, rd.Reading, int]] = []
    repeats = 0
    rest = [(i, r) for i, r in items if (loggers[r.logger_id].id, r.at) not in stored]
    by_logger: dict[int, list[tuple[int, rd.Reading]]] = {}
    for i, r in rest:
        by_logger.setdefault(loggers[r.logger_id].id, []).append((i, r))
    for logger_id, group in by_logger.items():
        found: dict[datetime, int] = dict(
            session.execute(  # type: ignore[arg-type]
                select(TemperatureReading.measured_at, TemperatureReading.celsius_tenths).where(
                    TemperatureReading.logger_id == logger_id,
                    TemperatureReading.measured_at >= min(r.at for _i, r in group),
                    TemperatureReading.measured_at <= max(r.at for _i, r in group),
                )
            ).all()
        )
        existing = {at.astimezone(UTC): t for at, t in found.items()}
        for i, r in group:
            if existing.get(r.at) == r.celsius_tenths:
                repeats += 1
            else:
                clashes.append((i, r, existing.get(r.at, r.celsius_tenths)))
    return new, clashes, repeats


def ingest(
    session: Session,
    source: Source,
    parsed: rd.Parsed[Any],
    *,
    all_or_nothing: bool = False,
    grace: timedelta = rd.DEFAULT_GRACE,
    now: datetime | None = None,
) -> IngestResult:
    """Store parsed readings from `source` and compute the excursions they touch (the caller
    commits). Errors name the item index or row (`parsed.positions`). `all_or_nothing`: any
    error (the parser's or a logger's) raises ValidationError and nothing is written."""
    now = now or clock.now()
    source.check(session)
    result = IngestResult(
        duplicates=parsed.duplicates, errors=list(parsed.errors), error_count=parsed.error_count
    )
    make_error: Any = rd.RowError if all_or_nothing else rd.ItemError
    positions = parsed.positions or list(range(len(parsed.readings)))
    serials = {r.logger_id for r in parsed.readings}
    loggers = (
        {
            lg.serial: lg
            for lg in session.scalars(
                select(TemperatureLogger).where(TemperatureLogger.serial.in_(serials))
            ).unique()
        }
        if serials
        else {}
    )
    items: list[tuple[int, rd.Reading]] = []
    new_errors: list[Any] = []
    for pos, r in zip(positions, parsed.readings, strict=True):
        why = source.refusal(loggers.get(r.logger_id), r.logger_id)
        if why is not None:
            new_errors.append(make_error(pos, why))
        else:
            items.append((pos, r))
    if all_or_nothing and (result.error_count or new_errors):
        _refuse_file(result.errors + new_errors, result.error_count + len(new_errors))
    stored, clashes, repeats = _store(session, items, loggers, now)
    result.accepted = len(stored)
    result.duplicates += repeats
    for pos, r, was in clashes:
        new_errors.append(
            make_error(
                pos,
                _(
                    "Logger %(serial)s already has a reading at this time, of %(stored)s ℃.",
                    serial=r.logger_id,
                    stored=f"{was / 10:.1f}",
                ),
            )
        )
    if all_or_nothing and new_errors:
        session.rollback()
        _refuse_file(new_errors, len(new_errors))
    result.error_count += len(new_errors)
    result.errors = sorted(
        result.errors + new_errors, key=lambda e: e.index if hasattr(e, "index") else e.row
    )
    result.errors = result.errors[: rd.MAX_REPORTED_ERRORS]
    windows: dict[int, tuple[datetime, datetime]] = {}
    for _pos, r in stored:
        lid = loggers[r.logger_id].id
        lo, hi = windows.get(lid, (r.at, r.at))
        windows[lid] = (min(lo, r.at), max(hi, r.at))
    by_id = {lg.id: lg for lg in loggers.values()}
    for lid, (lo, hi) in windows.items():
        logger = by_id[lid]
        if logger.last_reading_at is None or logger.last_reading_at < hi:
            logger.last_reading_at = hi
        result.excursions += recompute(session, logger, lo, hi, grace=grace, now=now)
    return result


def _refuse_file(errors: list[Any], count: int) -> None:
    shown = sorted(errors, key=lambda e: e.row)[:10]
    lines = "; ".join(str(_("row %(row)s: %(problem)s", row=e.row, problem=e.message)) for e in shown)
    more = count - len(shown)
    message = (
        _("Nothing was saved. Correct these rows and upload the file again: %(lines)s", lines=lines)
        if more <= 0
        else _(
            "Nothing was saved. Correct these rows and upload the file again: %(lines)s (and %(more)s more)",
            lines=lines,
            more=more,
        )
    )
    raise ValidationError(message, field_errors={"file": [message]})


def ingest_batch(
    session: Session,
    source: Source,
    payload: Any,
    *,
    grace: timedelta = rd.DEFAULT_GRACE,
    now: datetime | None = None,
) -> IngestResult:
    """An API batch: the good readings stored, the bad ones reported by index; committed."""
    source.check(session)
    parsed = rd.parse_batch(payload, now=now)
    result = ingest(session, source, parsed, grace=grace, now=now)
    session.commit()
    return result


def ingest_csv(
    session: Session,
    user: User | None,
    data: bytes,
    *,
    grace: timedelta = rd.DEFAULT_GRACE,
    now: datetime | None = None,
) -> IngestResult:
    """A CSV upload by staff: all the rows stored, or none (the message names the bad rows)."""
    source = Source(user=authz.require_user(user))
    source.check(session)
    parsed = rd.parse_csv(data, now=now)
    if parsed.error_count:
        _refuse_file(list(parsed.errors), parsed.error_count)
    try:
        result = ingest(session, source, parsed, all_or_nothing=True, grace=grace, now=now)
    except ServiceError:
        session.rollback()
        raise
    session.commit()
    return result


# --- excursions ---------------------------------------------------------------------------------


def _in_range(limits: rd.Limits) -> Any:
    conds = []
    if limits.low_tenths is not None:
        conds.append(TemperatureReading.celsius_tenths >= limits.low_tenths)
    if limits.high_tenths is not None:
        conds.append(TemperatureReading.celsius_tenths <= limits.high_tenths)
    return and_(*conds)


def recompute(
    session: Session,
    logger: TemperatureLogger,
    start: datetime,
    end: datetime,
    *,
    grace: timedelta = rd.DEFAULT_GRACE,
    now: datetime | None = None,
) -> list[Excursion]:
    """Compute again the logger's excursions that readings in [start, end] touch; returns the
    new ones (their lots marked, staff alerted)."""
    now = now or clock.now()
    limits = rd.STORAGE_LIMITS[logger.storage_class]
    if limits.low_tenths is None and limits.high_tenths is None:
        return []
    session.flush()
    of_logger = TemperatureReading.logger_id == logger.id
    lo = session.scalar(
        select(func.max(TemperatureReading.measured_at)).where(
            of_logger, TemperatureReading.measured_at < start, _in_range(limits)
        )
    )
    hi = session.scalar(
        select(func.min(TemperatureReading.measured_at)).where(
            of_logger, TemperatureReading.measured_at > end, _in_range(limits)
        )
    )
    stmt = select(TemperatureReading.measured_at, TemperatureReading.celsius_tenths).where(of_logger)
    old_stmt = select(Excursion).where(Excursion.logger_id == logger.id)
    if lo is not None:
        stmt = stmt.where(TemperatureReading.measured_at >= lo)
        old_stmt = old_stmt.where(Excursion.started_at > lo)
    if hi is not None:
        stmt = stmt.where(TemperatureReading.measured_at <= hi)
        old_stmt = old_stmt.where(Excursion.started_at < hi)
    found = rd.find_excursions(
        (rd.Reading(logger.serial, at.astimezone(UTC), t) for at, t in session.execute(stmt)),
        logger.storage_class,
        grace,
    )
    old = {e.started_at.astimezone(UTC): e for e in session.scalars(old_stmt).unique()}
    created: list[Excursion] = []
    for ex in found:
        row = old.pop(ex.start, None)
        values = _values(session, logger, ex)
        if row is None:
            row = Excursion(
                logger_id=logger.id,
                node_id=logger.node_id,
                county_code=logger.node.county_code,
                storage_class=logger.storage_class,
                started_at=ex.start,
                created_at=now,
                **values,
            )
            session.add(row)
            session.flush()
            created.append(row)
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
        else:
            continue
        _mark_lots(session, logger, row)
    for gone in old.values():
        session.delete(gone)
    for row in created:
        _alert(session, logger, row, now)
    return created


def _values(session: Session, logger: TemperatureLogger, ex: rd.Excursion) -> dict[str, Any]:
    lo, hi = session.execute(
        select(
            func.min(TemperatureReading.celsius_tenths), func.max(TemperatureReading.celsius_tenths)
        ).where(
            TemperatureReading.logger_id == logger.id,
            TemperatureReading.measured_at >= ex.start,
            # The run's own readings: not the in-range reading that ended it.
            TemperatureReading.measured_at <= ex.end
            if ex.open_ended
            else TemperatureReading.measured_at < ex.end,
        )
    ).one()
    return {
        "ended_at": ex.end,
        "open_ended": ex.open_ended,
        "minutes": ex.minutes,
        "readings": ex.readings,
        "min_tenths": lo if lo is not None else ex.worst_tenths,
        "max_tenths": hi if hi is not None else ex.worst_tenths,
        "worst_tenths": ex.worst_tenths,
    }


def _mark_lots(session: Session, logger: TemperatureLogger, row: Excursion) -> None:
    marked = set(session.scalars(select(ExcursionLot.lot_id).where(ExcursionLot.excursion_id == row.id)))
    session.execute(delete(ExcursionLot).where(ExcursionLot.excursion_id == row.id))
    aboard = {s.lot_id for s in lots_of_logger(session, logger, row.started_at, row.ended_at)}
    # Only the lots kept in the range the logger watches: room-temperature goods riding in a
    # refrigerated van are not spoilt by 7 ℃.
    lot_ids = sorted(
        session.scalars(
            select(Lot.id)
            .join(SubOrder, SubOrder.id == Lot.sub_order_id)
            .where(Lot.id.in_(sorted(aboard)), SubOrder.storage_class == logger.storage_class)
        )
    )
    session.add_all(ExcursionLot(excursion_id=row.id, lot_id=lot_id) for lot_id in lot_ids)
    session.flush()
    # Each lot newly marked gets the excursion in its hash chain (once: a lot marked before is not).
    trace.record_excursion(session, row, set(lot_ids) - marked)


def _staff_to_alert(session: Session, node: Node) -> list[User]:
    where = [and_(RoleGrant.role == Role.COUNTY_STAFF, RoleGrant.county_code == node.county_code)]
    if node.kind == NodeKind.DISTRIBUTION_CENTER:
        where.append(and_(RoleGrant.role == Role.DC_STAFF, RoleGrant.node_id == node.id))
    ids = session.scalars(select(RoleGrant.user_id).where(or_(*where)).distinct())
    users = session.scalars(select(User).where(User.id.in_(list(ids))).order_by(User.id)).unique()
    return [u for u in users if u.is_active]


def range_text(storage_class: StorageClass) -> str:
    limits = rd.STORAGE_LIMITS[storage_class]
    if limits.low_tenths is not None and limits.high_tenths is not None:
        return f"{limits.low_tenths / 10:g}～{limits.high_tenths / 10:g}℃"
    if limits.high_tenths is not None:
        return f"{limits.high_tenths / 10:g}℃以下"
    return "-"


def _alert(session: Session, logger: TemperatureLogger, row: Excursion, now: datetime) -> None:
    lots = session.scalar(select(func.count()).where(ExcursionLot.excursion_id == row.id)) or 0
    params = {
        "place": place_label(logger),
        "serial": logger.serial,
        "start": row.started_at.astimezone(clock.CHINA).strftime("%m-%d %H:%M"),
        "minutes": row.minutes,
        "range": range_text(row.storage_class),
        "worst": f"{row.worst_tenths / 10:.1f}",
        "lots": lots,
    }
    for user in _staff_to_alert(session, logger.node):
        notify.record_staff_alert(
            session, NotificationEvent.COLD_EXCURSION, user, f"{row.id}", params, now=now
        )


# --- the staff's list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExcursionView:
    excursion: Excursion
    place: str
    range: str
    lots: list[Lot]
    can_acknowledge: bool


def open_excursions(
    session: Session, user: User | None, *, include_acknowledged: bool = False
) -> list[ExcursionView]:
    """The unacknowledged excursions of the nodes `user` looks after (admins: all), newest
    first, with the lots each marked."""
    user = authz.require_user(user)
    stmt = select(Excursion)
    if not authz.is_admin(user):
        counties = authz.staff_county_codes(user)
        dcs = authz.node_ids(user, Role.DC_STAFF)
        if not counties and not dcs:
            raise Forbidden()
        stmt = stmt.where(or_(Excursion.county_code.in_(counties), Excursion.node_id.in_(dcs)))
    if not include_acknowledged:
        stmt = stmt.where(Excursion.acknowledged_at.is_(None))
    rows = list(session.scalars(stmt.order_by(Excursion.started_at.desc()).limit(MAX_OPEN_LISTED)).unique())
    if not rows:
        return []
    links = session.execute(
        select(ExcursionLot.excursion_id, Lot)
        .join(Lot, Lot.id == ExcursionLot.lot_id)
        .where(ExcursionLot.excursion_id.in_([r.id for r in rows]))
        .order_by(Lot.id)
    ).all()
    lots: dict[int, list[Lot]] = {}
    for ex_id, lot in links:
        lots.setdefault(ex_id, []).append(lot)
    return [
        ExcursionView(
            excursion=r,
            place=place_label(r.logger),
            range=range_text(r.storage_class),
            lots=lots.get(r.id, []),
            can_acknowledge=authz.may_cold_chain(
                ColdChainAction.MANAGE, authz.cold_chain_standings(user, r.logger.node)
            ),
        )
        for r in rows
    ]


def acknowledge(session: Session, user: User | None, excursion_id: int) -> Excursion:
    """Staff of the logger's node acknowledge an excursion; again changes nothing."""
    user = authz.require_user(user)
    row = session.get(Excursion, excursion_id)
    if row is None:
        raise NotFound()
    standings = authz.cold_chain_standings(user, row.logger.node)
    if not standings:
        raise NotFound()
    authz.require_cold_chain(ColdChainAction.MANAGE, standings)
    if row.acknowledged_at is None:
        session.execute(
            update(Excursion)
            .where(Excursion.id == row.id, Excursion.acknowledged_at.is_(None))
            .values(acknowledged_at=clock.now(), acknowledged_by_id=user.id)
        )
        session.commit()
        session.refresh(row)
    return row


DEFAULT_SILENT_AFTER = timedelta(hours=2)


def flag_silent_loggers(
    session: Session, *, after: timedelta = DEFAULT_SILENT_AFTER, now: datetime | None = None
) -> dict[str, int]:
    """The flag-silent-loggers job: an active logger whose last reading is older than `after`
    alerts its node's staff, once per silence (the key is its last reading's time: a logger that
    comes back and falls silent again alerts again). Committed."""
    now = now or clock.now()
    silent = list(
        session.scalars(
            select(TemperatureLogger).where(
                TemperatureLogger.active.is_(True),
                TemperatureLogger.last_reading_at.is_not(None),
                TemperatureLogger.last_reading_at < now - after,
            )
        ).unique()
    )
    told = 0
    for logger in silent:
        assert logger.last_reading_at is not None
        params = {
            "serial": logger.serial,
            "place": place_label(logger),
            "since": logger.last_reading_at.astimezone(clock.CHINA).strftime("%m-%d %H:%M"),
        }
        key = f"{logger.id}:{int(logger.last_reading_at.timestamp())}"
        for user in _staff_to_alert(session, logger.node):
            if notify.record_staff_alert(
                session, NotificationEvent.LOGGER_SILENT, user, key, params, now=now
            ):
                told += 1
    session.commit()
    return {"silent": len(silent), "alerts": told}


def staff_to_alert(session: Session, node: Node) -> list[User]:
    """Who hears about trouble at `node`: its county's staff, and a DC's own staff (the people
    an excursion alerts; services/logistics/exceptions.py tells them of stuck parcels too)."""
    return _staff_to_alert(session, node)
