"""The day's vehicle routes of a hub (issue 12, item 6): the network's parcels turned into a
`vrp.Problem`, solved with OR-Tools (vrp.solve) under a time limit, and stored as the hub's plan
for the day; the legs carried get their vehicle and planned times.

The problem of a hub H for a day:
* depot: H's position and opening hours;
* vehicles: H's active vehicles: capacity (kg; litres → m³), refrigerated or not, the shift as the
  window in which each may leave and must be back;
* stops: the nodes one level below H that have something to do: a county center's village points,
  a distribution center's county centers (network.py sends a DC's parcels to county centers, and
  trunk legs between DCs and door rounds in the city are not village runs). At stop S:
  drops = parcels waiting at H whose next leg goes to S; pickups = parcels waiting at S whose next
  leg goes to H (loads.py: weight, and volume from weight); a cold stop when any of them is
  chilled or frozen (only a refrigerated vehicle may serve it);
* each stop's window: its opening hours ("08:00-20:00", the format services/validation.py checks;
  24:00 is midnight). Hours missing or unreadable: the whole day, so the vehicle's shift alone
  bounds the visit (the page shows "hours unknown");
* service time at a stop: STOP_SERVICE_SECONDS.
* distances: the app's DistanceMatrix (marketplace/gateways.py: haversine × road factor unless a
  road-network provider is configured).

Every visit may be dropped: an overloaded day plans what fits and lists the rest with a reason.
A stop without coordinates cannot be routed and is listed too.

Planning again (the same hub and day) replaces the plan, keeping the stops staff locked to a
vehicle on that vehicle (vrp's locks); it is idempotent: the same parcels give the same problem,
and only the unlocked part can move. Everything is computed before anything is written, and the
plan, its runs, its stops and the legs' vehicles are written in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import (
    Leg,
    LegStatus,
    Node,
    NodeKind,
    RoutePlan,
    RouteRun,
    RouteStop,
    User,
    Vehicle,
    clock,
)
from services import authz
from services.authz import HubAction
from services.errors import Conflict, NotFound, ValidationError
from services.i18n import _
from services.logistics import fleet, loads, vrp
from services.logistics.distance import DistanceMatrix, Point
from services.validation import check_opening_hours, id_or_none

# Unloading the drops and loading the produce at a village point: the agent checks the labels.
STOP_SERVICE_SECONDS = 600
DEFAULT_TIME_LIMIT_S = 3.0
STOP_KIND = {
    NodeKind.COUNTY_CENTER: NodeKind.VILLAGE_POINT,
    NodeKind.DISTRIBUTION_CENTER: NodeKind.COUNTY_CENTER,
}


class Reason:
    """Why a stop is not planned (stored as the code; the page shows the text)."""

    NO_COORDINATES = "no_coordinates"
    NO_VEHICLE = "no_vehicle"
    NEEDS_COLD = "needs_refrigerated"
    LOCKED = "locked_vehicle"
    TOO_LARGE = "too_large"
    HOURS = "outside_hours"
    FULL = "over_capacity"


REASON_TEXT = {
    Reason.NO_COORDINATES: _("The point has no coordinates."),
    Reason.NO_VEHICLE: _("No vehicle is on the road at this center."),
    Reason.NEEDS_COLD: _("Chilled or frozen goods: no refrigerated vehicle can take them."),
    Reason.LOCKED: _("Locked to a vehicle that cannot take it this day."),
    Reason.TOO_LARGE: _("More than any vehicle carries."),
    Reason.HOURS: _("No vehicle can reach it within its opening hours and the shift."),
    Reason.FULL: _("The day's vehicles are full."),
}


def parse_hours(text: str | None) -> tuple[int, int] | None:
    """Opening hours "08:00-20:00" as seconds of the day, None when missing or unreadable."""
    try:
        hours = check_opening_hours(text)
    except ValidationError:
        return None
    if not hours:
        return None
    start, end = hours.split("-")
    seconds = [int(t[:2]) * 3600 + int(t[3:]) * 60 for t in (start, end)]
    return seconds[0], seconds[1]


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _clock_text(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _point(node: Node) -> Point | None:
    if node.latitude is None or node.longitude is None:
        return None
    return Point(node.latitude, node.longitude)


@dataclass
class StopLoad:
    node: Node
    drops: list[loads.Parcel] = field(default_factory=list)
    pickups: list[loads.Parcel] = field(default_factory=list)

    @property
    def cold(self) -> bool:
        return any(p.cold for p in self.drops + self.pickups)

    def grams(self, parcels: Iterable[loads.Parcel]) -> int:
        return sum(p.weight_g for p in parcels)

    def litres(self, parcels: Iterable[loads.Parcel]) -> int:
        return sum(p.volume_l for p in parcels)


@dataclass
class DayProblem:
    """A hub's day as vrp sees it, with what the plan is written from."""

    hub: Node
    day: date
    problem: vrp.Problem
    stops: dict[str, StopLoad]  # by vrp stop id (the node id as text), in the problem
    vehicles: dict[str, Vehicle]  # by vrp vehicle id
    unroutable: list[StopLoad]  # no coordinates
    hours: dict[str, str]  # the window planned per stop id ("" = unknown)


def stop_loads(session: Session, hub: Node) -> list[StopLoad]:
    """The hub's stops with something to drop or collect, in node id order."""
    kind = STOP_KIND.get(hub.kind)
    if kind is None:
        raise NotFound()
    by_node: dict[int, StopLoad] = {}
    nodes: dict[int, Node] = {}

    def stop(node_id: int) -> StopLoad | None:
        if node_id not in nodes:
            node = session.get(Node, node_id)
            if node is None:
                return None
            nodes[node_id] = node
        node = nodes[node_id]
        if node.kind != kind or node.id == hub.id:
            return None
        return by_node.setdefault(node_id, StopLoad(node))

    for parcel in loads.waiting(session, at=[hub.id]):
        if parcel.leg.to_node_id is not None and (s := stop(parcel.leg.to_node_id)) is not None:
            s.drops.append(parcel)
    for parcel in loads.waiting(session, to=[hub.id]):
        if (s := stop(parcel.leg.from_node_id)) is not None:
            s.pickups.append(parcel)
    return [by_node[k] for k in sorted(by_node)]


def build_day_problem(
    session: Session,
    hub: Node,
    day: date,
    distances: DistanceMatrix,
    *,
    locks: dict[int, int] | None = None,
) -> DayProblem:
    """The vrp.Problem of `hub`'s day from the network (see the module's docstring); `locks`:
    stop node id → vehicle id."""
    depot_point = _point(hub)
    if depot_point is None:
        raise ValidationError(_("The center has no coordinates: set them before planning routes."))
    depot_hours = parse_hours(hub.opening_hours) or (0, vrp.DAY_S)
    fleet_now = fleet.vehicles(session, hub, active_only=True)
    vehicles = {str(v.id): v for v in fleet_now}
    locks = {k: v for k, v in (locks or {}).items() if str(v) in vehicles}

    stops: dict[str, StopLoad] = {}
    hours: dict[str, str] = {}
    vrp_stops: list[vrp.Stop] = []
    unroutable: list[StopLoad] = []
    for load in stop_loads(session, hub):
        point = _point(load.node)
        if point is None:
            unroutable.append(load)
            continue
        window = parse_hours(load.node.opening_hours)
        sid = str(load.node.id)
        stops[sid] = load
        hours[sid] = f"{_clock_text(window[0])}-{_clock_text(window[1])}" if window else ""
        lock = locks.get(load.node.id)
        vrp_stops.append(
            vrp.Stop(
                id=sid,
                point=point,
                drop_kg=load.grams(load.drops) / 1000,
                drop_m3=load.litres(load.drops) / 1000,
                pickup_kg=load.grams(load.pickups) / 1000,
                pickup_m3=load.litres(load.pickups) / 1000,
                window=window or (0, vrp.DAY_S),
                service_seconds=STOP_SERVICE_SECONDS,
                needs_cold=load.cold,
                locked_vehicle=str(lock) if lock is not None else None,
            )
        )
    problem = vrp.build_problem(
        vrp.Depot(depot_point, depot_hours[0], depot_hours[1]),
        vrp_stops,
        [
            vrp.Vehicle(
                id=vid,
                capacity_kg=v.capacity_kg,
                capacity_m3=v.capacity_l / 1000,
                refrigerated=v.refrigerated,
                shift_start_s=_seconds(v.shift_start),
                shift_end_s=_seconds(v.shift_end),
            )
            for vid, v in vehicles.items()
        ],
        distances,
    )
    return DayProblem(hub, day, problem, stops, vehicles, unroutable, hours)


def _reason(problem: vrp.Problem, stop: vrp.Stop) -> str:
    """Why `stop` was dropped: the first rule no vehicle can meet, else the day is full."""
    if not problem.vehicles:
        return Reason.NO_VEHICLE
    candidates = list(problem.vehicles)
    if stop.needs_cold:
        candidates = [v for v in candidates if v.refrigerated]
        if not candidates:
            return Reason.NEEDS_COLD
    if stop.locked_vehicle is not None:
        candidates = [v for v in candidates if v.id == stop.locked_vehicle]
        if not candidates:
            return Reason.LOCKED
    fits = [
        v
        for v in candidates
        if all(q <= c for q, c in zip(stop.drop, v.capacity, strict=True))
        and all(q <= c for q, c in zip(stop.pickup, v.capacity, strict=True))
    ]
    if not fits:
        return Reason.LOCKED if stop.locked_vehicle is not None else Reason.TOO_LARGE
    j = next(i for i, s in enumerate(problem.stops, start=1) if s.id == stop.id)
    seconds = problem.travel.seconds
    for v in fits:
        leave, back = problem.working_time(v)
        start = max(stop.window[0], leave + seconds[0][j])
        done = start + stop.service_seconds
        if done <= stop.window[1] and done + seconds[j][0] <= back:
            return Reason.LOCKED if stop.locked_vehicle is not None else Reason.FULL
    return Reason.HOURS


def _at(day: date, seconds: int) -> datetime:
    return clock.start_of_day(day) + timedelta(seconds=seconds)


def plan_for(session: Session, hub: Node, day: date) -> RoutePlan | None:
    return session.scalar(select(RoutePlan).where(RoutePlan.node_id == hub.id, RoutePlan.day == day))


def _check_day(day: date) -> None:
    if day < clock.today():
        raise ValidationError(_("A day that has passed cannot be planned."))


def plan_day(
    session: Session,
    user: User | None,
    hub: Node,
    day: date,
    distances: DistanceMatrix,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> RoutePlan:
    """Plan (or plan again) `hub`'s day: solve, then store the plan and set the carried legs'
    vehicle and planned times, in one transaction; locked stops stay on their vehicle."""
    user = authz.require_hub(HubAction.PLAN_ROUTES, user, hub)
    _check_day(day)
    return _plan(session, user, hub, day, distances, time_limit_s)


def _plan(
    session: Session, user: User, hub: Node, day: date, distances: DistanceMatrix, time_limit_s: float
) -> RoutePlan:
    existing = plan_for(session, hub, day)
    locks = {
        s.node_id: s.locked_vehicle_id
        for s in (existing.stops if existing is not None else [])
        if s.locked_vehicle_id is not None
    }
    try:
        day_problem = build_day_problem(session, hub, day, distances, locks=locks)
        problem = day_problem.problem
        solved = vrp.solve(problem, time_limit_s=time_limit_s)
        broken = vrp.check_plan(problem, solved)
        if broken:  # vrp re-checks its own routes: a bug there, never a half plan here
            raise RuntimeError(f"the solver's plan breaks the rules: {broken[:3]}")
    except Exception:
        session.rollback()  # a lock set by lock_stop goes with it
        raise

    try:
        plan = existing or RoutePlan(node_id=hub.id, day=day)
        if existing is not None:
            session.execute(delete(RouteStop).where(RouteStop.plan_id == existing.id))
            session.execute(delete(RouteRun).where(RouteRun.plan_id == existing.id))
            session.expire(existing, ["stops", "runs"])
        plan.solver = solved.solver
        plan.distance_m = solved.distance_m
        plan.solve_ms = round((solved.stats.seconds if solved.stats else 0) * 1000)
        plan.planned_at = clock.now()
        plan.planned_by_id = user.id
        session.add(plan)
        session.flush()

        carried: dict[int, tuple[int, datetime, datetime]] = {}  # leg id → vehicle, depart, arrive
        for route in solved.routes:
            vehicle = day_problem.vehicles[route.vehicle_id]
            session.add(
                RouteRun(
                    plan_id=plan.id,
                    vehicle_id=vehicle.id,
                    depart_at=_at(day, route.depart_s) if route.visits else None,
                    return_at=_at(day, route.return_s) if route.visits else None,
                    distance_m=route.distance_m,
                    load_out_g=route.load_out_g,
                    load_out_cm3=route.load_out_cm3,
                )
            )
            for seq, visit in enumerate(route.visits, start=1):
                load = day_problem.stops[visit.stop_id]
                row = _stop_row(plan, day_problem, visit.stop_id, locks) | {
                    "vehicle_id": vehicle.id,
                    "seq": seq,
                    "arrive_at": _at(day, visit.start_s),
                    "depart_at": _at(day, visit.departure_s),
                    "load_g": visit.load_g,
                    "load_cm3": visit.load_cm3,
                }
                session.add(RouteStop(**row))
                for parcel in load.drops:
                    carried[parcel.leg.id] = (
                        vehicle.id,
                        _at(day, route.depart_s),
                        _at(day, visit.start_s),
                    )
                for parcel in load.pickups:
                    carried[parcel.leg.id] = (
                        vehicle.id,
                        _at(day, visit.departure_s),
                        _at(day, route.return_s),
                    )
        stops_by_id = {s.id: s for s in problem.stops}
        for sid in solved.dropped:
            row = _stop_row(plan, day_problem, sid, locks) | {"reason": _reason(problem, stops_by_id[sid])}
            session.add(RouteStop(**row))
        for load in day_problem.unroutable:
            session.add(
                RouteStop(
                    plan_id=plan.id,
                    node_id=load.node.id,
                    drop_g=load.grams(load.drops),
                    drop_l=load.litres(load.drops),
                    pickup_g=load.grams(load.pickups),
                    pickup_l=load.litres(load.pickups),
                    drop_parcels=len(load.drops),
                    pickup_parcels=len(load.pickups),
                    cold=load.cold,
                    locked_vehicle_id=locks.get(load.node.id),
                    reason=Reason.NO_COORDINATES,
                )
            )
        _assign_legs(session, hub, day_problem, carried)
        session.commit()
    except IntegrityError:  # the same day planned at the same moment by someone else
        session.rollback()
        raise Conflict(_("The day was being planned at the same time: plan again.")) from None
    except Exception:
        session.rollback()
        raise
    session.refresh(plan)
    return plan


def _stop_row(plan: RoutePlan, day_problem: DayProblem, sid: str, locks: dict[int, int]) -> dict[str, Any]:
    """A RouteStop's columns for stop `sid` (its loads, hours and lock)."""
    load = day_problem.stops[sid]
    return {
        "plan_id": plan.id,
        "node_id": load.node.id,
        "drop_g": load.grams(load.drops),
        "drop_l": load.litres(load.drops),
        "pickup_g": load.grams(load.pickups),
        "pickup_l": load.litres(load.pickups),
        "drop_parcels": len(load.drops),
        "pickup_parcels": len(load.pickups),
        "cold": load.cold,
        "hours": day_problem.hours.get(sid, ""),
        "locked_vehicle_id": locks.get(load.node.id),
    }


def _assign_legs(
    session: Session, hub: Node, day_problem: DayProblem, carried: dict[int, tuple[int, datetime, datetime]]
) -> None:
    """Set the carried legs' vehicle and planned times; the legs of the day's stops not carried
    lose a vehicle of this hub an earlier plan gave them."""
    own = {v.id for v in fleet.vehicles(session, hub)}
    loads_all = list(day_problem.stops.values()) + day_problem.unroutable
    for load in loads_all:
        for parcel in load.drops + load.pickups:
            leg: Leg = parcel.leg
            if leg.status != LegStatus.PLANNED:
                continue
            if leg.id in carried:
                leg.vehicle_id, leg.planned_depart_at, leg.planned_arrive_at = carried[leg.id]
            elif leg.vehicle_id in own:
                leg.vehicle_id = None


def lock_stop(
    session: Session,
    user: User | None,
    hub: Node,
    day: date,
    stop_node_id: Any,
    vehicle_id: Any,
    distances: DistanceMatrix,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> RoutePlan:
    """Lock a stop of the day's plan to a vehicle (move it there), or unlock it (`vehicle_id`
    None or ""), then plan the day again; the lock is kept by every later plan of the day. The
    ids may come straight from a form."""
    user = authz.require_hub(HubAction.PLAN_ROUTES, user, hub)
    _check_day(day)
    stop_node_id = id_or_none(stop_node_id)
    if vehicle_id is None or (isinstance(vehicle_id, str) and not vehicle_id.strip()):
        vehicle_id = None
    else:
        vehicle_id = id_or_none(vehicle_id)
        if vehicle_id is None:
            message = _("Choose one of this center's vehicles on the road.")
            raise ValidationError(message, field_errors={"vehicle": [message]})
    plan = plan_for(session, hub, day)
    stop = next((s for s in plan.stops if s.node_id == stop_node_id), None) if plan and stop_node_id else None
    if plan is None or stop is None:
        raise ValidationError(_("That stop is not in the day's plan: plan the day first."))
    if vehicle_id is not None:
        vehicle = session.get(Vehicle, vehicle_id)
        if vehicle is None or vehicle.node_id != hub.id or not vehicle.active:
            message = _("Choose one of this center's vehicles on the road.")
            raise ValidationError(message, field_errors={"vehicle": [message]})
        if stop.cold and not vehicle.refrigerated:
            message = _("This stop has chilled or frozen goods: choose a refrigerated vehicle.")
            raise ValidationError(message, field_errors={"vehicle": [message]})
    stop.locked_vehicle_id = vehicle_id
    session.flush()
    return _plan(session, user, hub, day, distances, time_limit_s)


# --- what the page shows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    run: RouteRun
    stops: list[RouteStop]
    colour: str


@dataclass(frozen=True)
class MapView:
    """A plain SVG map: points projected from lat/lon into a width × height box."""

    width: int
    height: int
    depot: tuple[float, float]
    points: list[tuple[float, float, str, str]]  # x, y, label, colour ("" unplanned)
    lines: list[tuple[str, str]]  # an SVG polyline's points, its colour


COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457")


def runs_of(plan: RoutePlan) -> list[RunView]:
    views = []
    for i, run in enumerate(plan.runs):
        stops = sorted((s for s in plan.stops if s.vehicle_id == run.vehicle_id), key=lambda s: s.seq)
        views.append(RunView(run, stops, COLOURS[i % len(COLOURS)]))
    return views


def unplanned_of(plan: RoutePlan) -> list[RouteStop]:
    return [s for s in plan.stops if s.vehicle_id is None]


def map_of(
    hub: Node, plan: RoutePlan, *, width: int = 320, height: int = 240, margin: int = 16
) -> MapView | None:
    """The stops and each vehicle's loop, projected equirectangularly (x = lon·cos(mean lat),
    y = -lat), scaled to fit the box: fine over a county's few tens of kilometres."""
    places = [(hub.latitude, hub.longitude)] + [(s.node.latitude, s.node.longitude) for s in plan.stops]
    known = [(lat, lon) for lat, lon in places if lat is not None and lon is not None]
    if hub.latitude is None or hub.longitude is None:
        return None
    mean = math.radians(sum(lat for lat, _ in known) / len(known))
    xs = [lon * math.cos(mean) for _, lon in known]
    ys = [-lat for lat, _ in known]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = min(width - 2 * margin, height - 2 * margin) / span

    def project(lat: float, lon: float) -> tuple[float, float]:
        return (
            round(margin + (lon * math.cos(mean) - min(xs)) * scale, 1),
            round(margin + (-lat - min(ys)) * scale, 1),
        )

    depot = project(hub.latitude, hub.longitude)
    colour_of = {rv.run.vehicle_id: rv.colour for rv in runs_of(plan)}
    points = [
        (*project(s.node.latitude, s.node.longitude), str(s.seq or "×"), colour_of.get(s.vehicle_id or 0, ""))
        for s in plan.stops
        if s.node.latitude is not None and s.node.longitude is not None
    ]
    lines = []
    for rv in runs_of(plan):
        if not rv.stops:
            continue
        path = [depot] + [project(s.node.latitude, s.node.longitude) for s in rv.stops] + [depot]
        lines.append((" ".join(f"{x},{y}" for x, y in path), rv.colour))
    used_height = round(max(y for _, y in [depot] + [(p[0], p[1]) for p in points]) + margin)
    return MapView(width, min(height, max(used_height, 80)), depot, points, lines)
