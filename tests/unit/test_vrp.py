"""Vehicle routing (issue 12, item 6): both solvers (OR-Tools and the nearest-neighbour baseline)
keep capacity at every point of a route with drops and pickups on the same run, the windows, the
shifts, cold stops on refrigerated vehicles and locked stops on their vehicle; an overloaded day
plans what fits and lists the rest; `check_plan` catches a plan that breaks a rule.

Every OR-Tools solve here is small and limited to a fraction of a second."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.logistics import vrp
from services.logistics.distance import HaversineMatrix, Point
from services.logistics.vrp import (
    Depot,
    Plan,
    Problem,
    Stop,
    Vehicle,
    build_problem,
    check_plan,
    nearest_neighbour,
    solve,
)

MEIXIAN = Point(lat=24.265926, lon=116.081656)  # 梅县区's seat: the county center, our depot
LIMIT_S = 0.3


def h(hours: float) -> int:
    return round(hours * 3600)


def place(east_km: float, north_km: float) -> Point:
    """A point so many km east and north of the depot."""
    lat = MEIXIAN.lat + north_km / 111.2
    lon = MEIXIAN.lon + east_km / (111.2 * math.cos(math.radians(MEIXIAN.lat)))
    return Point(lat=lat, lon=lon)


DEPOT = Depot(MEIXIAN, open_s=h(6), close_s=h(22))


def van(vid: str = "a", kg: float = 1000, m3: float = 8, cold: bool = False, **kw) -> Vehicle:
    return Vehicle(vid, kg, m3, refrigerated=cold, shift_start_s=h(7), shift_end_s=h(19), **kw)


def problem(stops: list[Stop], vehicles: list[Vehicle], depot: Depot = DEPOT) -> Problem:
    return build_problem(depot, stops, vehicles, HaversineMatrix())


def or_tools(p: Problem) -> Plan:
    return solve(p, time_limit_s=LIMIT_S)


SOLVERS: list[Callable[[Problem], Plan]] = [or_tools, nearest_neighbour]
both_solvers = pytest.mark.parametrize("plan_for", SOLVERS, ids=["or-tools", "nearest"])


def valid_plan(p: Problem, plan_for: Callable[[Problem], Plan]) -> Plan:
    plan = plan_for(p)
    assert check_plan(p, plan) == []
    assert plan.served | set(plan.dropped) == {s.id for s in p.stops}
    assert not plan.served & set(plan.dropped)
    return plan


@both_solvers
class TestCapacityWithDropsAndPickups:
    def test_drops_before_pickups_fit_though_drops_and_pickups_total_more_than_capacity(self, plan_for):
        # 900 kg of fertilizer off in the morning, 800 kg of pomelos on in the afternoon: 1.7 t
        # in all on a 1 t truck, never more than 900 kg on board at once.
        fertilizer = Stop("fertilizer", place(1.5, 1), drop_kg=900, window=(h(8), h(10)))
        pomelos = Stop("pomelos", place(2, -2), pickup_kg=800, window=(h(14), h(18)))
        p = problem([pomelos, fertilizer], [van(kg=1000)])
        plan = valid_plan(p, plan_for)
        route = plan.route_of("a")
        assert route.stop_ids == ("fertilizer", "pomelos")
        assert route.load_out_g == 900_000
        assert [v.load_g for v in route.visits] == [0, 800_000]
        assert plan.dropped == ()

    def test_pickups_before_drops_overflow_so_one_of_them_is_dropped(self, plan_for):
        # The same goods with the windows the other way round: collecting first would put
        # 900 + 800 kg on board. A load counted only from its start value misses this.
        pomelos = Stop("pomelos", place(2, -2), pickup_kg=800, window=(h(8), h(10)))
        fertilizer = Stop("fertilizer", place(3, 1), drop_kg=900, window=(h(14), h(18)))
        p = problem([pomelos, fertilizer], [van(kg=1000)])
        plan = valid_plan(p, plan_for)
        assert len(plan.dropped) == 1 and len(plan.served) == 1

    def test_more_drops_than_one_vehicle_carries_are_split_across_vehicles(self, plan_for):
        stops = [Stop(f"s{i}", place(i + 1, i % 2), drop_kg=400) for i in range(4)]
        p = problem(stops, [van("a", kg=1000), van("b", kg=1000)])
        plan = valid_plan(p, plan_for)
        assert plan.dropped == ()
        assert all(r.load_out_g <= 1_000_000 for r in plan.routes)
        assert sorted(len(r.visits) for r in plan.routes) == [2, 2]

    def test_volume_binds_as_well_as_weight(self, plan_for):
        # Light, bulky goods (puffed rice cakes): 2 × 0.6 m³ cannot share a 1 m³ van.
        stops = [Stop(f"s{i}", place(2, i), drop_kg=20, drop_m3=0.6) for i in range(2)]
        p = problem(stops, [van("a", m3=1), van("b", m3=1)])
        plan = valid_plan(p, plan_for)
        assert plan.dropped == ()
        assert [len(r.visits) for r in plan.routes] == [1, 1]

    def test_pickups_alone_fill_the_vehicle_on_the_way_back(self, plan_for):
        stops = [Stop(f"s{i}", place(2 + i, 1), pickup_kg=400) for i in range(3)]
        plan = valid_plan(problem(stops, [van(kg=1000)]), plan_for)
        assert len(plan.served) == 2 and len(plan.dropped) == 1
        assert plan.route_of("a").load_out_g == 0
        assert plan.route_of("a").visits[-1].load_g == 800_000


@both_solvers
class TestTimeWindowsAndShifts:
    def test_every_visit_happens_while_its_point_is_open(self, plan_for):
        stops = [
            Stop("early", place(2, 0), drop_kg=50, window=(h(8), h(9)), service_seconds=600),
            Stop("late", place(6, 4), drop_kg=50, window=(h(15), h(17))),
            Stop("midday", place(4, 2), pickup_kg=80, window=(h(11), h(13))),
        ]
        plan = valid_plan(problem(stops, [van()]), plan_for)
        assert plan.dropped == ()
        windows = {s.id: s for s in stops}
        for visit in plan.route_of("a").visits:
            stop = windows[visit.stop_id]
            assert stop.window[0] <= visit.start_s
            assert visit.departure_s == visit.start_s + stop.service_seconds <= stop.window[1]
        assert plan.route_of("a").stop_ids == ("early", "midday", "late")

    def test_arriving_before_opening_waits_for_the_point_to_open(self, plan_for):
        plan = valid_plan(
            problem([Stop("s", place(2, 0), drop_kg=10, window=(h(10), h(12)))], [van()]),
            plan_for,
        )
        visit = plan.route_of("a").visits[0]
        assert visit.arrival_s < h(10) == visit.start_s

    def test_a_point_closed_before_the_shift_can_reach_it_is_dropped(self, plan_for):
        stops = [
            Stop("closed", place(30, 0), drop_kg=10, window=(h(6), h(7.5))),
            Stop("open", place(1, 0), drop_kg=10),
        ]
        plan = valid_plan(problem(stops, [van()]), plan_for)
        assert plan.dropped == ("closed",)

    def test_routes_are_back_before_the_shift_ends(self, plan_for):
        # A 2-hour shift, 30 minutes a stop: not everything fits.
        stops = [Stop(f"s{i}", place(1 + i, 1), drop_kg=10, service_seconds=1800) for i in range(6)]
        short = Vehicle("a", 1000, 8, shift_start_s=h(9), shift_end_s=h(11))
        plan = valid_plan(problem(stops, [short]), plan_for)
        assert plan.dropped
        assert plan.route_of("a").return_s <= h(11)

    def test_the_depot_s_hours_bound_the_routes(self, plan_for):
        depot = Depot(MEIXIAN, open_s=h(9), close_s=h(10))
        stops = [Stop(f"s{i}", place(1 + i, 1), drop_kg=10, service_seconds=900) for i in range(4)]
        plan = valid_plan(problem(stops, [van()], depot=depot), plan_for)
        route = plan.route_of("a")
        assert route.depart_s >= h(9) and route.return_s <= h(10)
        assert plan.dropped


@both_solvers
class TestColdStops:
    def test_cold_stops_ride_only_on_refrigerated_vehicles(self, plan_for):
        stops = [
            Stop(f"s{i}", place(i - 3, (i * 7) % 5 - 2), drop_kg=100, needs_cold=i % 2 == 0) for i in range(6)
        ]
        p = problem(stops, [van("ambient"), van("reefer", cold=True)])
        plan = valid_plan(p, plan_for)
        assert plan.dropped == ()
        cold = {s.id for s in stops if s.needs_cold}
        assert cold <= set(plan.route_of("reefer").stop_ids)
        assert not cold & set(plan.route_of("ambient").stop_ids)

    def test_a_cold_stop_without_a_refrigerated_vehicle_is_dropped(self, plan_for):
        stops = [Stop("chilled", place(2, 0), drop_kg=10, needs_cold=True), Stop("dry", place(1, 0))]
        plan = valid_plan(problem(stops, [van()]), plan_for)
        assert plan.dropped == ("chilled",)


@both_solvers
class TestLockedStops:
    def test_a_locked_stop_stays_on_its_vehicle(self, plan_for):
        # Everything fits on "a"; staff locked one stop to "b".
        stops = [Stop(f"s{i}", place(1 + i, 0), drop_kg=50) for i in range(4)]
        stops[2] = dataclasses.replace(stops[2], locked_vehicle="b")
        plan = valid_plan(problem(stops, [van("a"), van("b")]), plan_for)
        assert plan.dropped == ()
        assert "s2" in plan.route_of("b").stop_ids

    def test_a_stop_locked_to_a_vehicle_it_cannot_ride_is_dropped_not_moved(self, plan_for):
        stops = [Stop("chilled", place(2, 0), drop_kg=10, needs_cold=True, locked_vehicle="a")]
        plan = valid_plan(problem(stops, [van("a"), van("b", cold=True)]), plan_for)
        assert plan.dropped == ("chilled",)


@both_solvers
class TestOverloadedDay:
    def test_plans_what_fits_and_lists_every_other_stop_as_dropped(self, plan_for):
        stops = [Stop(f"s{i:02}", place(1 + i % 4, i // 4), drop_kg=300) for i in range(10)]
        plan = valid_plan(problem(stops, [van(kg=1000)]), plan_for)
        assert len(plan.served) == 3
        assert len(plan.dropped) == 7

    def test_a_stop_heavier_than_every_vehicle_is_dropped(self, plan_for):
        stops = [Stop("tractor", place(2, 0), drop_kg=3000), Stop("seed", place(1, 1), drop_kg=20)]
        plan = valid_plan(problem(stops, [van(kg=1000), van("b", kg=1500)]), plan_for)
        assert plan.dropped == ("tractor",)

    def test_a_day_without_vehicles_drops_every_stop(self, plan_for):
        stops = [Stop("s1", place(2, 0)), Stop("s2", place(1, 1))]
        plan = valid_plan(problem(stops, []), plan_for)
        assert plan.routes == () and plan.dropped == ("s1", "s2") and plan.distance_m == 0

    def test_a_day_without_stops_is_an_empty_plan(self, plan_for):
        plan = valid_plan(problem([], [van()]), plan_for)
        assert plan.route_of("a").visits == () and plan.distance_m == 0


class TestOrToolsSearch:
    def test_the_same_small_day_gives_the_same_plan_twice(self):
        stops = [Stop(f"s{i}", place((i * 5) % 7 - 3, (i * 3) % 5 - 2), drop_kg=100) for i in range(7)]
        p = problem(stops, [van("a"), van("b")])
        first, second = or_tools(p), or_tools(p)
        assert (first.distance_m, first.served) == (second.distance_m, second.served)

    def test_is_no_longer_than_the_baseline_when_both_serve_every_stop(self):
        stops = [
            Stop(f"s{i}", place((i * 5) % 11 - 5, (i * 7) % 9 - 4), drop_kg=150, pickup_kg=100)
            for i in range(10)
        ]
        p = problem(stops, [van("a"), van("b")])
        ours, baseline = valid_plan(p, or_tools), valid_plan(p, nearest_neighbour)
        assert ours.dropped == baseline.dropped == ()
        assert ours.distance_m <= baseline.distance_m

    def test_keeps_to_its_time_limit_and_reports_its_search(self):
        stops = [Stop(f"s{i}", place(i % 5, i // 5), drop_kg=10) for i in range(15)]
        plan = solve(problem(stops, [van()]), time_limit_s=0.2)
        assert plan.stats is not None
        assert plan.stats.seconds < 1.5
        assert plan.stats.first_solution_s is not None and plan.stats.improvements >= 1

    def test_when_the_first_solution_heuristic_finds_nothing_it_starts_from_the_baseline(self, monkeypatch):
        # PATH_CHEAPEST_ARC does that on real days (see vrp.FIRST_SOLUTION); simulate it here.
        stops = [Stop(f"s{i}", place(i % 4 - 2, i // 4 - 1), drop_kg=100, pickup_kg=60) for i in range(12)]
        p = problem(stops, [van("a"), van("b")])
        real_run, calls = vrp._Model.run, []

        def run(self, params, start=None):
            calls.append(start)
            return None if start is None else real_run(self, params, start)

        monkeypatch.setattr(vrp._Model, "run", run)
        plan = valid_plan(p, or_tools)
        assert calls[0] is None and calls[1] == nearest_neighbour(p)
        assert plan.dropped == ()
        assert plan.distance_m <= calls[1].distance_m

    def test_an_unknown_first_solution_strategy_is_refused(self):
        with pytest.raises(ValueError):
            solve(problem([Stop("s", place(1, 0))], [van()]), first_solution="FASTEST_PLEASE")


class TestNearestNeighbour:
    def test_goes_to_the_nearest_stop_it_may_serve_next(self):
        stops = [Stop("far", place(6, 0)), Stop("near", place(1, 0)), Stop("mid", place(3, 0))]
        plan = valid_plan(problem(stops, [van()]), nearest_neighbour)
        assert plan.route_of("a").stop_ids == ("near", "mid", "far")

    def test_skips_a_nearer_stop_that_would_overflow_the_vehicle(self):
        stops = [
            Stop("near-heavy", place(1, 0), drop_kg=700),
            Stop("mid", place(2, 0), drop_kg=400),
        ]
        plan = valid_plan(problem(stops, [van(kg=1000)]), nearest_neighbour)
        assert plan.route_of("a").stop_ids == ("near-heavy",)
        assert plan.dropped == ("mid",)


class TestBadInput:
    @pytest.mark.parametrize(
        ("stop", "message"),
        [
            (Stop("s", place(1, 0), drop_kg=-1), "zero or more"),
            (Stop("s", place(1, 0), pickup_m3=float("nan")), "zero or more"),
            (Stop("s", place(1, 0), window=(h(12), h(8))), "window"),
            (Stop("s", place(1, 0), service_seconds=-5), "service"),
            (Stop("s", place(1, 0), locked_vehicle="truck-9"), "truck-9"),
        ],
    )
    def test_a_malformed_stop_is_refused_with_a_reason(self, stop, message):
        with pytest.raises(ValueError, match=message):
            problem([stop], [van()])

    def test_repeated_stop_ids_are_refused(self):
        with pytest.raises(ValueError, match="repeat"):
            problem([Stop("s", place(1, 0)), Stop("s", place(2, 0))], [van()])

    def test_a_travel_matrix_of_the_wrong_size_is_refused(self):
        p = problem([Stop("s", place(1, 0))], [van()])
        with pytest.raises(ValueError, match="3×3"):
            Problem(p.depot, (*p.stops, Stop("t", place(2, 0))), p.vehicles, p.travel)


class TestCheckPlan:
    """The checker is the referee of the tests and the bench: it must see each kind of cheat."""

    @pytest.fixture()
    def day(self) -> tuple[Problem, Plan]:
        stops = [
            Stop("fertilizer", place(1.5, 1), drop_kg=900, window=(h(8), h(10))),
            Stop("pomelos", place(2, -2), pickup_kg=800, window=(h(14), h(18))),
            Stop("chilled", place(1, 1), drop_kg=50, needs_cold=True),
        ]
        # "a" takes the fertilizer, then the pomelos; the small reefer the cold stop.
        p = problem(stops, [van("a", kg=1000), van("reefer", kg=60, cold=True)])
        plan = nearest_neighbour(p)
        assert check_plan(p, plan) == []
        assert plan.route_of("a").stop_ids == ("fertilizer", "pomelos")
        return p, plan

    def test_a_stop_neither_routed_nor_dropped_is_reported(self, day):
        p, plan = day
        route = plan.routes[0]
        lost = dataclasses.replace(route, visits=route.visits[:-1])
        broken = dataclasses.replace(plan, routes=(lost, *plan.routes[1:]))
        assert any("neither routed nor dropped" in e for e in check_plan(p, broken))

    def test_a_stop_both_routed_and_dropped_is_reported(self, day):
        p, plan = day
        twice = dataclasses.replace(plan, dropped=(plan.routes[0].stop_ids[0],))
        assert any("appears 2 times" in e for e in check_plan(p, twice))

    def test_a_cold_stop_on_an_ambient_vehicle_is_reported(self, day):
        p, plan = day
        swapped = tuple(
            dataclasses.replace(r, vehicle_id="a" if r.vehicle_id == "reefer" else "reefer")
            for r in plan.routes
        )
        errors = check_plan(p, dataclasses.replace(plan, routes=swapped))
        assert any("cold stop on an ambient vehicle" in e for e in errors)

    def test_collecting_before_dropping_is_reported_over_capacity(self, day):
        p, plan = day
        route = plan.route_of("a")
        backwards = dataclasses.replace(route, visits=(route.visits[1], route.visits[0]))
        routes = tuple(backwards if r is route else r for r in plan.routes)
        errors = check_plan(p, dataclasses.replace(plan, routes=routes))
        assert any("over capacity" in e for e in errors)

    def test_a_visit_after_closing_is_reported(self, day):
        p, plan = day
        route = plan.route_of("a")
        first = route.visits[0]
        late = dataclasses.replace(first, start_s=h(10), departure_s=h(10) + 300, arrival_s=first.arrival_s)
        routes = tuple(
            dataclasses.replace(r, visits=(late, *r.visits[1:])) if r is route else r for r in plan.routes
        )
        errors = check_plan(p, dataclasses.replace(plan, routes=routes))
        assert any("after closing" in e for e in errors)

    def test_a_distance_that_does_not_add_up_is_reported(self, day):
        p, plan = day
        shorter = dataclasses.replace(plan, distance_m=plan.distance_m - 1000)
        assert any("the plan drives" in e for e in check_plan(p, shorter))


# Small random days: every plan either solver makes passes the independent check.
stop_strategy: st.SearchStrategy[dict] = st.builds(
    dict,
    east=st.floats(-12, 12),
    north=st.floats(-12, 12),
    drop=st.integers(0, 700),
    pickup=st.integers(0, 700),
    opens=st.integers(6, 16),
    hours=st.integers(1, 10),
    cold=st.booleans(),
    lock=st.sampled_from([None, None, None, "a", "b"]),
)


@settings(max_examples=12)
@given(
    stops=st.lists(stop_strategy, min_size=1, max_size=7),
    caps=st.tuples(st.integers(300, 1500), st.integers(300, 1500)),
    reefer=st.booleans(),
)
def test_both_solvers_plans_pass_the_independent_check_on_random_small_days(stops, caps, reefer):
    p = problem(
        [
            Stop(
                f"s{i}",
                place(s["east"], s["north"]),
                drop_kg=s["drop"],
                drop_m3=s["drop"] / 300,
                pickup_kg=s["pickup"],
                pickup_m3=s["pickup"] / 250,
                window=(h(s["opens"]), h(s["opens"] + s["hours"])),
                needs_cold=s["cold"],
                locked_vehicle=s["lock"],
            )
            for i, s in enumerate(stops)
        ],
        [van("a", kg=caps[0], m3=3), van("b", kg=caps[1], m3=3, cold=reefer)],
    )
    for plan_for in (lambda q: solve(q, time_limit_s=0.1), nearest_neighbour):
        valid_plan(p, plan_for)
