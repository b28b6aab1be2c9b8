"""Daily vehicle routes from one depot (a distribution center or a county service center) to its
village points and back: drops for the villages and pickups of produce for the city on the same
run, each vehicle within its capacity (kg and m³) at every point of its route, each visit inside
the point's opening hours, each route inside the vehicle's shift and the depot's hours, cold
stops only on refrigerated vehicles, locked stops only on their vehicle. Every visit may be
dropped at a penalty, so an overloaded day plans what fits and lists what does not.

Pure code: no database, no clock, no Flask. The caller builds a `Problem` (with a distance
matrix from `services.logistics.distance`), then `solve` (OR-Tools) or `nearest_neighbour` (the
baseline the bench compares against) returns a `Plan`, which `check_plan` verifies from scratch.

Units. Inputs speak kg, m³ and seconds of the day; inside, everything is an integer: grams, cm³,
metres and seconds (OR-Tools works on int64, and the checker must see exactly what the solver
saw). Plans carry the integers; the `*_kg` / `*_m3` properties are for display.

Time. A visit's `start_s` is when service begins (after waiting for the point to open) and the
whole service fits in the window: window[0] <= start_s and start_s + service_seconds <=
window[1], i.e. the vehicle is there while the point is open. Routes are reported on the earliest
schedule (leave the depot as soon as shift and depot allow); any feasible order has a feasible
earliest schedule, so nothing is lost by it.

Load with pickups and deliveries on the same run (the part that needs care). Everything a route
drops leaves the depot on board, so the load leaving the depot is D = the sum of the route's drops,
and after the k-th stop it is D - delivered_k + picked_k. The capacity must hold at every point:
a route that collects 800 kg of pomelos after dropping 900 kg of fertilizer fits a 1 t truck,
though its drops and pickups total 1.7 t; the same stops in the other order do not fit. A single
OR-Tools dimension with transit (pickup - drop) measures the load along the route only up to its
starting value, and D depends on which stops the route gets. So, per resource (kg, m³):

- `delivered_<r>`: transit = the stop's drop, starting at 0; its value at the route's end is D
  (and D <= capacity comes for free).
- `load_<r>`: transit = pickup - drop, start value free, every value within [0, capacity]: this
  is the load on arrival at each stop and at the return to the depot, offset by its start value.
- one constraint per vehicle: load_<r> at the route's start == delivered_<r> at its end, which
  makes the offset D, i.e. load_<r> the true load everywhere.

The routing library's fast feasibility filters know the two dimensions but not the tie between
them; every candidate the filters accept is then checked by the constraint solver's propagation,
which enforces it. That costs the local search some rejected moves, and it rules out
PATH_CHEAPEST_ARC as the first solution (see FIRST_SOLUTION); an insertion heuristic starts the
search instead. `check_plan` recomputes the loads independently, and every solver's routes are
re-timed and re-loaded by the same rules before they become a plan, so an infeasible answer
fails loudly rather than reaching a driver.

(The other exact model, a twin "load at the depot" node per stop paired with it as pickup and
delivery, is filter-visible but doubles the nodes and needs a further dimension to keep the twins
at the start of the route; the tie is smaller and measured fast enough: see bench/logistics.py.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from services.logistics.distance import DistanceMatrix, Point, TravelMatrix

DAY_S = 86_400
GRAMS_PER_KG = 1_000
CM3_PER_M3 = 1_000_000
RESOURCES = ("kg", "m3")  # the order of every (grams, cm³) pair below
ORTOOLS = "or-tools"
NEAREST = "nearest-neighbour"
# The first-solution heuristic. PATH_CHEAPEST_ARC (extend each route by its cheapest next arc)
# does not suit this model: the routing filters it builds with do not know the load tie (see
# above), so on the bench's days its finished routes fail the constraint solver's check and it
# backtracks for the whole time limit (10^5 failures on 50 stops) to return nothing; it works on
# small days only. The insertion heuristics are checked insertion by insertion. Measured with
# guided local search for 10 s (bench/logistics.py, km against the baseline): on 100 stops
# PARALLEL_CHEAPEST_INSERTION 0.58, SAVINGS 0.59, LOCAL_CHEAPEST_INSERTION 0.62; on 300 stops
# 0.79, SAVINGS 0.69 but with 26 stops dropped, LOCAL_CHEAPEST_INSERTION 1.07.
FIRST_SOLUTION = "PARALLEL_CHEAPEST_INSERTION"


def grams(kg: float) -> int:
    return round(kg * GRAMS_PER_KG)


def cm3(m3: float) -> int:
    return round(m3 * CM3_PER_M3)


@dataclass(frozen=True)
class Depot:
    """Where every route starts and ends, with its opening hours (seconds of the day)."""

    point: Point
    open_s: int = 0
    close_s: int = DAY_S


@dataclass(frozen=True)
class Stop:
    """A village point to visit: goods to drop, produce to collect, its opening hours."""

    id: str
    point: Point
    drop_kg: float = 0.0
    drop_m3: float = 0.0
    pickup_kg: float = 0.0
    pickup_m3: float = 0.0
    window: tuple[int, int] = (0, DAY_S)
    service_seconds: int = 300
    needs_cold: bool = False
    locked_vehicle: str | None = None

    @property
    def drop(self) -> tuple[int, int]:
        return grams(self.drop_kg), cm3(self.drop_m3)

    @property
    def pickup(self) -> tuple[int, int]:
        return grams(self.pickup_kg), cm3(self.pickup_m3)


@dataclass(frozen=True)
class Vehicle:
    """A vehicle of the depot: capacity, ambient or refrigerated, and the driver's shift."""

    id: str
    capacity_kg: float
    capacity_m3: float
    refrigerated: bool = False
    shift_start_s: int = 0
    shift_end_s: int = DAY_S

    @property
    def capacity(self) -> tuple[int, int]:
        return grams(self.capacity_kg), cm3(self.capacity_m3)


@dataclass(frozen=True)
class Problem:
    """One depot's day. `travel` covers the depot (index 0) then the stops in order (1..n)."""

    depot: Depot
    stops: tuple[Stop, ...]
    vehicles: tuple[Vehicle, ...]
    travel: TravelMatrix
    # Metres a dropped visit costs the objective; by default far above any detour a visit adds,
    # so the solver serves every stop it can fit.
    drop_penalty_m: int | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @cached_property
    def penalty(self) -> int:
        if self.drop_penalty_m is not None:
            return self.drop_penalty_m
        longest = max((max(row) for row in self.travel.metres), default=0)
        return max(100 * longest, 1_000_000)

    def working_time(self, vehicle: Vehicle) -> tuple[int, int]:
        """When the vehicle may leave and must be back: its shift within the depot's hours."""
        return (
            max(vehicle.shift_start_s, self.depot.open_s),
            min(vehicle.shift_end_s, self.depot.close_s),
        )


def build_problem(
    depot: Depot,
    stops: Sequence[Stop],
    vehicles: Sequence[Vehicle],
    distances: DistanceMatrix,
    *,
    drop_penalty_m: int | None = None,
) -> Problem:
    """A problem with its travel matrix measured by `distances` (depot first, then the stops)."""
    travel = distances.matrix([depot.point, *(s.point for s in stops)])
    return Problem(depot, tuple(stops), tuple(vehicles), travel, drop_penalty_m)


def _validate(problem: Problem) -> None:
    def fail(message: str) -> None:
        raise ValueError(message)

    if problem.depot.open_s > problem.depot.close_s:
        fail("the depot closes before it opens")
    vehicle_ids = [v.id for v in problem.vehicles]
    if len(set(vehicle_ids)) != len(vehicle_ids):
        fail("vehicle ids repeat")
    for v in problem.vehicles:
        if v.shift_start_s > v.shift_end_s:
            fail(f"vehicle {v.id}: its shift ends before it starts")
        if not (v.capacity_kg >= 0 and v.capacity_m3 >= 0):
            fail(f"vehicle {v.id}: capacity must be zero or more")
    stop_ids = [s.id for s in problem.stops]
    if len(set(stop_ids)) != len(stop_ids):
        fail("stop ids repeat")
    known = set(vehicle_ids)
    for s in problem.stops:
        quantities = (s.drop_kg, s.drop_m3, s.pickup_kg, s.pickup_m3)
        if not all(math.isfinite(q) and q >= 0 for q in quantities):
            fail(f"stop {s.id}: drops and pickups must be zero or more")
        if s.window[0] > s.window[1]:
            fail(f"stop {s.id}: its window closes before it opens")
        if s.service_seconds < 0:
            fail(f"stop {s.id}: service time must be zero or more")
        if s.locked_vehicle is not None and s.locked_vehicle not in known:
            fail(f"stop {s.id}: locked to unknown vehicle {s.locked_vehicle}")
    size = len(problem.stops) + 1
    for matrix in (problem.travel.metres, problem.travel.seconds):
        if len(matrix) != size or any(len(row) != size for row in matrix):
            fail(f"the travel matrix must be {size}×{size} (the depot, then each stop)")


# --- plans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A stop on a route: when the vehicle gets there, serves it and leaves, and what is on
    board once it has dropped and collected (grams, cm³)."""

    stop_id: str
    arrival_s: int
    start_s: int
    departure_s: int
    load_g: int
    load_cm3: int

    @property
    def load_kg(self) -> float:
        return self.load_g / GRAMS_PER_KG

    @property
    def load_m3(self) -> float:
        return self.load_cm3 / CM3_PER_M3


@dataclass(frozen=True)
class Route:
    """One vehicle's day: out of the depot with every drop on board, the visits, back."""

    vehicle_id: str
    depart_s: int
    return_s: int
    load_out_g: int
    load_out_cm3: int
    distance_m: int
    visits: tuple[Visit, ...]

    @property
    def stop_ids(self) -> tuple[str, ...]:
        return tuple(v.stop_id for v in self.visits)


@dataclass(frozen=True)
class SearchStats:
    """How the search went: wall time, and when the first and the final best plans appeared."""

    seconds: float
    first_solution_s: float | None
    best_solution_s: float | None
    improvements: int


@dataclass(frozen=True)
class Plan:
    """Routes per vehicle (empty ones included), the total distance, and the stops not served."""

    routes: tuple[Route, ...]
    dropped: tuple[str, ...]
    distance_m: int
    solver: str
    stats: SearchStats | None = field(default=None, compare=False)

    @property
    def distance_km(self) -> float:
        return self.distance_m / 1000

    @property
    def served(self) -> frozenset[str]:
        return frozenset(sid for r in self.routes for sid in r.stop_ids)

    def route_of(self, vehicle_id: str) -> Route:
        return next(r for r in self.routes if r.vehicle_id == vehicle_id)


# --- shared rules ----------------------------------------------------------------------------


def _allowed_vehicles(problem: Problem) -> list[list[int]]:
    """Per stop, the vehicles that could serve it alone (cold, lock, capacity, time): an empty
    list means no plan can serve it."""
    seconds = problem.travel.seconds
    allowed: list[list[int]] = []
    for j, stop in enumerate(problem.stops, start=1):
        fits: list[int] = []
        for vi, v in enumerate(problem.vehicles):
            if stop.needs_cold and not v.refrigerated:
                continue
            if stop.locked_vehicle is not None and stop.locked_vehicle != v.id:
                continue
            cap = v.capacity
            if any(q > c for q, c in zip(stop.drop, cap, strict=True)) or any(
                q > c for q, c in zip(stop.pickup, cap, strict=True)
            ):
                continue
            leave, back = problem.working_time(v)
            start = max(stop.window[0], leave + seconds[0][j])
            done = start + stop.service_seconds
            if done > stop.window[1] or done + seconds[j][0] > back:
                continue
            fits.append(vi)
        allowed.append(fits)
    return allowed


def _route(problem: Problem, vehicle: Vehicle, order: Sequence[int]) -> Route | None:
    """The route visiting stops `order` (indices into problem.stops) on the earliest schedule,
    or None when it breaks a rule (capacity at some point, a window, the shift)."""
    metres, seconds = problem.travel.metres, problem.travel.seconds
    stops = [problem.stops[i] for i in order]
    cap = vehicle.capacity
    load = [sum(s.drop[r] for s in stops) for r in range(2)]
    if any(load[r] > cap[r] for r in range(2)):
        return None
    if any(s.needs_cold and not vehicle.refrigerated for s in stops):
        return None
    if any(s.locked_vehicle not in (None, vehicle.id) for s in stops):
        return None
    leave, back = problem.working_time(vehicle)
    load_out = tuple(load)
    visits: list[Visit] = []
    at, clock, distance = 0, leave, 0
    for i, stop in zip(order, stops, strict=True):
        node = i + 1
        arrival = clock + seconds[at][node]
        start = max(arrival, stop.window[0])
        clock = start + stop.service_seconds
        if clock > stop.window[1]:
            return None
        load = [load[r] - stop.drop[r] + stop.pickup[r] for r in range(2)]
        if any(load[r] > cap[r] for r in range(2)):
            return None
        distance += metres[at][node]
        visits.append(Visit(stop.id, arrival, start, clock, load[0], load[1]))
        at = node
    distance += metres[at][0]
    back_at = clock + seconds[at][0] if visits else leave
    if visits and back_at > back:
        return None
    return Route(vehicle.id, leave, back_at, load_out[0], load_out[1], distance, tuple(visits))


def _plan(problem: Problem, orders: Sequence[Sequence[int]], solver: str, stats: SearchStats | None) -> Plan:
    routes = []
    for vehicle, order in zip(problem.vehicles, orders, strict=True):
        route = _route(problem, vehicle, order)
        if route is None:  # a solver produced an order the rules refuse: a bug, say so loudly
            raise RuntimeError(f"{solver} planned an infeasible route for vehicle {vehicle.id}")
        routes.append(route)
    served = {i for order in orders for i in order}
    dropped = tuple(s.id for i, s in enumerate(problem.stops) if i not in served)
    return Plan(tuple(routes), dropped, sum(r.distance_m for r in routes), solver, stats)


# --- OR-Tools --------------------------------------------------------------------------------


def solve(problem: Problem, *, time_limit_s: float = 10.0, first_solution: str = FIRST_SOLUTION) -> Plan:
    """The day's plan from OR-Tools: a first solution (`first_solution`, a FirstSolutionStrategy
    name), then guided local search until `time_limit_s`, minimising total metres (a dropped
    visit costs `problem.penalty`). Should the first-solution heuristic find nothing, the search
    starts again from the nearest-neighbour plan, with a fifth of the limit more."""
    from ortools.constraint_solver import routing_enums_pb2

    began = time.monotonic()
    allowed = _allowed_vehicles(problem)
    modelled = [i for i, fits in enumerate(allowed) if fits]  # the others cannot be served
    if not modelled or not problem.vehicles:
        return _plan(problem, [[] for _ in problem.vehicles], ORTOOLS, None)

    model = _Model(problem, allowed, modelled, began)
    params = model.parameters(time_limit_s)
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.Value.Value(first_solution)
    orders = model.run(params)
    if orders is None:
        # The heuristic found no first solution (the library then hands back "all unperformed",
        # which would read as a day where nothing fits): a fresh model, from the baseline's routes.
        baseline = nearest_neighbour(problem)
        model = _Model(problem, allowed, modelled, began)
        orders = model.run(model.parameters(max(0.1, time_limit_s / 5)), start=baseline)
    if orders is None:
        raise RuntimeError(f"OR-Tools found no plan (status {model.routing.status()})")
    stats = SearchStats(
        seconds=time.monotonic() - began,
        first_solution_s=model.progress.first,
        best_solution_s=model.progress.best_at,
        improvements=model.progress.improvements,
    )
    return _plan(problem, orders, ORTOOLS, stats)


class _Model:
    """The OR-Tools routing model of a problem, over the stops some vehicle could serve."""

    def __init__(self, problem: Problem, allowed: list[list[int]], modelled: list[int], began: float):
        from ortools.constraint_solver import pywrapcp

        self.problem, self.modelled = problem, modelled
        nodes = [0] + [i + 1 for i in modelled]  # routing node k is problem node nodes[k]
        stops = [problem.stops[i] for i in modelled]
        self.manager = manager = pywrapcp.RoutingIndexManager(len(nodes), len(problem.vehicles), 0)
        self.routing = routing = pywrapcp.RoutingModel(manager)

        metres = [[problem.travel.metres[a][b] for b in nodes] for a in nodes]
        service = [0] + [s.service_seconds for s in stops]
        # A stop's service happens before the drive from it: the time spent from leaving for b.
        busy = [
            [service[a] + problem.travel.seconds[nodes[a]][nodes[b]] for b in range(len(nodes))]
            for a in range(len(nodes))
        ]
        routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(metres))

        horizon = max(
            [DAY_S, problem.depot.close_s]
            + [v.shift_end_s for v in problem.vehicles]
            + [s.window[1] for s in stops]
        )
        routing.AddDimension(routing.RegisterTransitMatrix(busy), horizon, horizon, False, "time")
        time_dim = routing.GetDimensionOrDie("time")
        for k, stop in enumerate(stops, start=1):
            index = manager.NodeToIndex(k)
            time_dim.CumulVar(index).SetRange(stop.window[0], stop.window[1] - stop.service_seconds)
        for vi, vehicle in enumerate(problem.vehicles):
            leave, back = problem.working_time(vehicle)
            back = max(leave, back)  # a vehicle with no working time stays home (no stop allows it)
            time_dim.CumulVar(routing.Start(vi)).SetRange(leave, back)
            time_dim.CumulVar(routing.End(vi)).SetRange(leave, back)

        solver = routing.solver()
        for r, name in enumerate(RESOURCES):
            capacities = [v.capacity[r] for v in problem.vehicles]
            drops = [0] + [s.drop[r] for s in stops]
            change = [0] + [s.pickup[r] - s.drop[r] for s in stops]
            routing.AddDimensionWithVehicleCapacity(
                routing.RegisterUnaryTransitVector(drops), 0, capacities, True, f"delivered_{name}"
            )
            routing.AddDimensionWithVehicleCapacity(
                routing.RegisterUnaryTransitVector(change), 0, capacities, False, f"load_{name}"
            )
            delivered = routing.GetDimensionOrDie(f"delivered_{name}")
            load = routing.GetDimensionOrDie(f"load_{name}")
            for vi in range(len(problem.vehicles)):
                solver.Add(load.CumulVar(routing.Start(vi)) == delivered.CumulVar(routing.End(vi)))

        for k, i in enumerate(modelled, start=1):
            index = manager.NodeToIndex(k)
            if len(allowed[i]) < len(problem.vehicles):
                # -1 keeps the visit droppable. (SetAllowedVehiclesForIndex would say the same, but
                # its Python binding in ortools 9.15 refuses every list: no absl::Span typemap.)
                routing.VehicleVar(index).SetValues([-1, *allowed[i]])
            routing.AddDisjunction([index], problem.penalty)

        self.progress = _Progress(began, lambda: routing.CostVar().Max())
        routing.AddAtSolutionCallback(self.progress)

    @staticmethod
    def parameters(time_limit_s: float) -> Any:
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2

        params = pywrapcp.DefaultRoutingSearchParameters()
        params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
        return params

    def run(self, params: Any, start: Plan | None = None) -> list[list[int]] | None:
        """Each vehicle's stops (indices into problem.stops) in the best plan found, or None
        when the search found none (from scratch, or from the routes of `start`)."""
        routing, manager = self.routing, self.manager
        if start is None:
            solution = routing.SolveWithParameters(params)
        else:
            index_of = {
                self.problem.stops[i].id: manager.NodeToIndex(k) for k, i in enumerate(self.modelled, 1)
            }
            routing.CloseModelWithParameters(params)
            first = routing.ReadAssignmentFromRoutes(
                [[index_of[sid] for sid in route.stop_ids] for route in start.routes], True
            )
            solution = routing.SolveFromAssignmentWithParameters(first, params) if first else None
        if solution is None or self.progress.first is None:
            return None
        orders: list[list[int]] = []
        for vi in range(len(self.problem.vehicles)):
            order: list[int] = []
            index = solution.Value(routing.NextVar(routing.Start(vi)))
            while not routing.IsEnd(index):
                order.append(self.modelled[manager.IndexToNode(index) - 1])
                index = solution.Value(routing.NextVar(index))
            orders.append(order)
        return orders


class _Progress:
    """Called at each solution the search accepts: notes when the first and the best came."""

    def __init__(self, began: float, cost: Callable[[], int]) -> None:
        self.began, self.cost = began, cost
        self.first: float | None = None
        self.best_at: float | None = None
        self.best: int | None = None
        self.improvements = 0

    def __call__(self) -> None:
        now = time.monotonic() - self.began
        cost = self.cost()
        if self.first is None:
            self.first = now
        if self.best is None or cost < self.best:
            self.best, self.best_at = cost, now
            self.improvements += 1


# --- the baseline ----------------------------------------------------------------------------


def nearest_neighbour(problem: Problem) -> Plan:
    """The baseline: one vehicle after another (ambient ones first, so the refrigerated ones stay
    free for the cold stops only they can take), each route grown from the depot by the nearest
    unserved stop that can be appended within every rule (capacity at every point, window, shift
    and return, cold, lock).

    "Nearest" is by road metres from where the route ends. (Measuring it in time instead, the drive
    plus any wait for the point to open, as Solomon's variant for time windows does, made routes
    19-31 % longer on the bench's days: it jumps to far points that are open now. The shorter
    baseline is the fairer one to compare against.)
    """
    began = time.monotonic()
    metres, seconds = problem.travel.metres, problem.travel.seconds
    allowed = _allowed_vehicles(problem)
    waiting = {i for i, fits in enumerate(allowed) if fits}
    orders: list[list[int]] = [[] for _ in problem.vehicles]
    sequence = sorted(range(len(problem.vehicles)), key=lambda vi: problem.vehicles[vi].refrigerated)
    for vi in sequence:
        vehicle = problem.vehicles[vi]
        cap = vehicle.capacity
        leave, back = problem.working_time(vehicle)
        # On board = drops of the route (D) + (picked - delivered so far): track D, the current
        # (picked - delivered) and its running maximum, so each append is checked in O(1).
        drops, net, peak = [0, 0], [0, 0], [0, 0]
        at, clock = 0, leave
        while True:
            candidates = sorted(
                (i for i in waiting if vi in allowed[i]),
                key=lambda i: (metres[at][i + 1], i),
            )
            for i in candidates:
                stop, node = problem.stops[i], i + 1
                after = [net[r] + stop.pickup[r] - stop.drop[r] for r in range(2)]
                if any(drops[r] + stop.drop[r] + max(peak[r], after[r]) > cap[r] for r in range(2)):
                    continue
                start = max(clock + seconds[at][node], stop.window[0])
                done = start + stop.service_seconds
                if done > stop.window[1] or done + seconds[node][0] > back:
                    continue
                break
            else:
                break
            orders[vi].append(i)
            waiting.discard(i)
            drops = [drops[r] + stop.drop[r] for r in range(2)]
            net, peak = after, [max(peak[r], after[r]) for r in range(2)]
            at, clock = node, done
    elapsed = time.monotonic() - began
    return _plan(problem, orders, NEAREST, SearchStats(elapsed, elapsed, elapsed, 1))


# --- the independent check -------------------------------------------------------------------


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every rule the plan breaks, recomputed from the problem alone (empty: the plan is valid).

    Written apart from the solvers and the schedule they share, so neither can pass a plan the
    rules refuse: each stop is served once or dropped, capacity holds leaving the depot and after
    every stop, times follow the travel matrix, windows, shifts and the depot's hours hold, cold
    and locked stops sit on the right vehicles, and the distances add up."""
    problems: list[str] = []
    stops = {s.id: (i + 1, s) for i, s in enumerate(problem.stops)}
    vehicles = {v.id: v for v in problem.vehicles}
    metres, seconds = problem.travel.metres, problem.travel.seconds

    seen: dict[str, int] = {}
    for sid in [sid for r in plan.routes for sid in r.stop_ids] + list(plan.dropped):
        seen[sid] = seen.get(sid, 0) + 1
    for sid, count in seen.items():
        if sid not in stops:
            problems.append(f"unknown stop {sid}")
        elif count > 1:
            problems.append(f"stop {sid} appears {count} times")
    for sid in stops:
        if sid not in seen:
            problems.append(f"stop {sid} is neither routed nor dropped")

    route_vehicles = [r.vehicle_id for r in plan.routes]
    for vid in set(route_vehicles):
        if route_vehicles.count(vid) > 1:
            problems.append(f"vehicle {vid} has {route_vehicles.count(vid)} routes")
    total = 0
    for route in plan.routes:
        vehicle = vehicles.get(route.vehicle_id)
        if vehicle is None:
            problems.append(f"unknown vehicle {route.vehicle_id}")
            continue
        where = f"vehicle {vehicle.id}"
        known = [stops[sid] for sid in route.stop_ids if sid in stops]
        cap_g, cap_cm3 = grams(vehicle.capacity_kg), cm3(vehicle.capacity_m3)

        g = sum(grams(s.drop_kg) for _, s in known)
        c = sum(cm3(s.drop_m3) for _, s in known)
        if (route.load_out_g, route.load_out_cm3) != (g, c):
            problems.append(f"{where}: leaves with {g} g / {c} cm³, not as reported")
        if g > cap_g or c > cap_cm3:
            problems.append(f"{where}: over capacity leaving the depot ({g} g, {c} cm³)")

        leave = max(vehicle.shift_start_s, problem.depot.open_s)
        back = min(vehicle.shift_end_s, problem.depot.close_s)
        if route.visits and route.depart_s < leave:
            problems.append(f"{where}: leaves at {route.depart_s}, before {leave}")
        previous, clock, distance = 0, route.depart_s, 0
        for visit in route.visits:
            if visit.stop_id not in stops:
                continue
            node, stop = stops[visit.stop_id]
            at = f"{where} at {stop.id}"
            if stop.needs_cold and not vehicle.refrigerated:
                problems.append(f"{at}: a cold stop on an ambient vehicle")
            if stop.locked_vehicle is not None and stop.locked_vehicle != vehicle.id:
                problems.append(f"{at}: locked to {stop.locked_vehicle}")
            if visit.arrival_s != clock + seconds[previous][node]:
                problems.append(f"{at}: arrival {visit.arrival_s} does not follow the drive")
            if visit.start_s < visit.arrival_s or visit.start_s < stop.window[0]:
                problems.append(f"{at}: starts at {visit.start_s}, before arriving or opening")
            if visit.departure_s != visit.start_s + stop.service_seconds:
                problems.append(f"{at}: leaves at {visit.departure_s}, not after its service")
            if visit.departure_s > stop.window[1]:
                problems.append(f"{at}: still there at {visit.departure_s}, after closing")
            g += grams(stop.pickup_kg) - grams(stop.drop_kg)
            c += cm3(stop.pickup_m3) - cm3(stop.drop_m3)
            if (visit.load_g, visit.load_cm3) != (g, c):
                problems.append(f"{at}: on board {g} g / {c} cm³, not as reported")
            if g > cap_g or c > cap_cm3 or g < 0 or c < 0:
                problems.append(f"{at}: over capacity ({g} g, {c} cm³)")
            distance += metres[previous][node]
            previous, clock = node, visit.departure_s
        if route.visits:
            distance += metres[previous][0]
            if route.return_s != clock + seconds[previous][0]:
                problems.append(f"{where}: return {route.return_s} does not follow the drive")
            if route.return_s > back:
                problems.append(f"{where}: back at {route.return_s}, after {back}")
        if route.distance_m != distance:
            problems.append(f"{where}: drives {distance} m, not {route.distance_m}")
        total += distance
    if plan.distance_m != total:
        problems.append(f"the plan drives {total} m, not {plan.distance_m}")
    return problems
