"""The logistics network's figures (issue 12): `make bench B=logistics`.

Routing (services/logistics/vrp.py), pure computation, no database. For 50, 100 and 300 stops a
day is generated around the seeded coordinates (seed/data/coordinates.csv) with a fixed seed:

- the depot is 梅县区's county service center (梅县区县域电子商务综合服务中心, cold storage) at
  the county's seeded position; 梅州's distribution center is in Shenzhen, too far for a daily
  village run, so the county center plans the city's runs;
- the stops are village points scattered uniformly within 15 km of the seats of 梅州's eight
  counties, each dropping goods (fertilizer, groceries: 20-200 kg, 85 %) and/or collecting
  produce for the city (20-300 kg, 40 %), kg and m³ (goods at 250 kg/m³, produce at 350),
  15 % needing the cold chain; opening hours drawn from the seeded village points' hours
  (07:00-21:00 and the like), and a third of them with a narrower slot instead (a morning drop,
  an afternoon pickup after the harvest); service 5 minutes plus 1 per 100 kg handled;
- the fleet: light trucks (1.5 t, 10 m³), vans (0.8 t, 4 m³) and refrigerated trucks (1.2 t,
  8 m³), shifts 07:00-19:00, the depot open 06:00-21:00;
- distances: HaversineMatrix (great circle × 1.3 at 40 km/h);
- the baseline: vrp.nearest_neighbour, vehicle after vehicle (ambient first), each route grown by
  the nearest stop by road that keeps every rule; OR-Tools: vrp.solve (parallel cheapest
  insertion, then guided local search).

Fairness. A distance is only comparable between plans serving the same stops, so the fleet is
sized for the baseline: starting from one vehicle per 10 stops (a quarter refrigerated), vehicles
are added until the nearest-neighbour baseline drops nothing; OR-Tools then plans the same day
with the same fleet. `route_vs_nearest_ratio_<n>` is OR-Tools' km over the baseline's km when
both serve every stop (`route_vs_nearest_basis_<n>: same_stops`); should either drop stops, it
is the ratio of km per served stop, and the basis says `per_served_stop`. Both plans go through
vrp.check_plan, the independent validator (`route_check_violations_<n>` must be 0).

Time limit: BENCH_VRP_SECONDS (default 10) for every size, so the sizes compare at the same
limit; 300 stops are then solved again with BENCH_VRP_SECONDS_300 (default 30: three times the
stops, three times the time), reported as `route_*_300_long`. The issue's target:
route_vs_nearest_ratio_100 <= 0.85 within 10 s. Guided local search uses its whole limit, so
solve time against stops shows in when the first plan and the final best were found
(`route_first_solution_s_<n>`, `route_best_found_s_<n>`) and in how the ratio moves with more
time. OR-Tools runs on one core; the figures are of a machine shared with whatever else runs.

Temperature ingestion (services/logistics/coldchain.py), on PostgreSQL (PG_ADMIN_URL; a
database of its own, gdm_bench_coldchain, made and dropped): 100,000 readings from 10 chilled
loggers (a week of one-minute readings each, with a 45-minute excursion a day) sent as 100 API
batches of 1,000 decoded JSON items through coldchain.ingest_batch, the path POST /api/v1/readings
takes after authentication: parsing and validation (readings.py), the loggers' rights, the insert
(ON CONFLICT DO NOTHING), the excursions computed again over each batch's window, lots attributed
and staff alerted. `readings_per_s` is readings over the wall time of the 100 batches;
`readings_resend_per_s` the same for 10 of those batches sent again (nothing written, the
duplicates counted).

Scan ingestion and the public trace page over HTTP on PostgreSQL (bench/_logistics_api.py: the
seeded demo served by gunicorn, driven by wrk): scans_per_s beside a hello-world route in the same
run (scan_vs_hello_ratio), scans lost or written twice, and the trace page's p95.
BENCH_LOGISTICS=routing, readings or scans (comma-separated) runs those parts only.

Each figure prints as `name: value`. Absolute times depend on the machine; the ratio does less.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
for path in (PROJECT_ROOT, PROJECT_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from services.logistics.distance import HaversineMatrix, Point  # noqa: E402
from services.logistics.vrp import (  # noqa: E402
    Depot,
    Plan,
    Problem,
    Stop,
    Vehicle,
    check_plan,
    nearest_neighbour,
    solve,
)

COORDINATES = PROJECT_ROOT / "seed" / "data" / "coordinates.csv"
CITY = "4414"  # 梅州市
DEPOT_COUNTY = "441403"  # 梅县区: its county service center
SIZES = (50, 100, 300)
SEED = 20261203
RADIUS_KM = 15.0
STOPS_PER_VEHICLE = 10
RATIO_TARGET_100 = 0.85
# Opening hours of the seeded village points (seed/data/village_points.json).
OPENING_HOURS = [(6.5, 21), (7, 21), (7.5, 19.5), (7.5, 20), (7.5, 20.5), (7.5, 21), (8, 19), (8, 20)]
SLOTS = [(8, 11), (8.5, 12), (14, 17.5), (15, 18)]  # a morning drop, an afternoon pickup


def hours(h: float) -> int:
    return round(h * 3600)


def county_seats() -> dict[str, Point]:
    with COORDINATES.open(encoding="utf-8") as f:
        return {
            row["code"]: Point(lat=float(row["latitude"]), lon=float(row["longitude"]))
            for row in csv.DictReader(f)
            if row["level"] == "county" and row["code"].startswith(CITY)
        }


def scatter(rng: random.Random, centre: Point, radius_km: float) -> Point:
    """A point uniform in the disc of `radius_km` around `centre`."""
    r = radius_km * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    north, east = r * math.cos(angle), r * math.sin(angle)
    return Point(
        lat=centre.lat + north / 111.2,
        lon=centre.lon + east / (111.2 * math.cos(math.radians(centre.lat))),
    )


def make_stops(n: int, rng: random.Random, seats: dict[str, Point]) -> list[Stop]:
    stops = []
    codes = sorted(seats)
    for i in range(n):
        drop = rng.randint(20, 200) if rng.random() < 0.85 else 0
        pickup = rng.randint(20, 300) if rng.random() < 0.4 else 0
        if drop == pickup == 0:
            drop = rng.randint(20, 200)
        opens, closes = rng.choice(SLOTS if rng.random() < 1 / 3 else OPENING_HOURS)
        stops.append(
            Stop(
                id=f"v{i:03}",
                point=scatter(rng, seats[rng.choice(codes)], RADIUS_KM),
                drop_kg=drop,
                drop_m3=round(drop / 250, 3),
                pickup_kg=pickup,
                pickup_m3=round(pickup / 350, 3),
                window=(hours(opens), hours(closes)),
                service_seconds=300 + 60 * (drop + pickup) // 100,
                needs_cold=rng.random() < 0.15,
            )
        )
    return stops


def make_fleet(count: int) -> list[Vehicle]:
    """`count` vehicles: every fourth refrigerated, the others alternating trucks and vans."""
    fleet = []
    for i in range(count):
        if i % 4 == 0:
            kind, kg, m3 = "冷藏", 1200, 8
        elif i % 2 == 1:
            kind, kg, m3 = "货车", 1500, 10
        else:
            kind, kg, m3 = "面包", 800, 4
        fleet.append(Vehicle(f"{kind}{i:02}", kg, m3, i % 4 == 0, hours(7), hours(19)))
    return fleet


def fair_day(n: int, seats: dict[str, Point]) -> tuple[Problem, Plan, float]:
    """The day of `n` stops with the smallest fleet (from n/10 up) whose baseline drops nothing."""
    rng = random.Random(SEED + n)
    stops = make_stops(n, rng, seats)
    depot = Depot(seats[DEPOT_COUNTY], open_s=hours(6), close_s=hours(21))
    distances = HaversineMatrix()
    began = time.perf_counter()
    travel = distances.matrix([depot.point, *(s.point for s in stops)])
    matrix_s = time.perf_counter() - began
    count = math.ceil(n / STOPS_PER_VEHICLE)
    while True:
        problem = Problem(depot, tuple(stops), tuple(make_fleet(count)), travel)
        baseline = nearest_neighbour(problem)
        if not baseline.dropped or count >= n:
            return problem, baseline, matrix_s
        count += 1


def compare(problem: Problem, baseline: Plan, limit: float, suffix: str) -> Iterator[tuple[str, object]]:
    """OR-Tools on the day under `limit` seconds, against the baseline's plan."""
    plan = solve(problem, time_limit_s=limit)
    assert plan.stats is not None
    violations = check_plan(problem, plan) + check_plan(problem, baseline)
    for v in violations[:5]:
        print(f"  check_plan: {v}", file=sys.stderr)
    same = plan.served == baseline.served
    if same:
        ratio = plan.distance_m / baseline.distance_m
    else:
        ratio = (plan.distance_m / max(1, len(plan.served))) / (
            baseline.distance_m / max(1, len(baseline.served))
        )
    yield f"route_time_limit_s_{suffix}", f"{limit:g}"
    yield f"route_solve_s_{suffix}", f"{plan.stats.seconds:.2f}"
    yield f"route_first_solution_s_{suffix}", f"{plan.stats.first_solution_s or 0:.2f}"
    yield f"route_best_found_s_{suffix}", f"{plan.stats.best_solution_s or 0:.2f}"
    yield f"route_improvements_{suffix}", plan.stats.improvements
    yield f"route_ortools_km_{suffix}", f"{plan.distance_km:.1f}"
    yield f"route_ortools_dropped_{suffix}", len(plan.dropped)
    yield f"route_ortools_vehicles_used_{suffix}", sum(1 for r in plan.routes if r.visits)
    yield f"route_check_violations_{suffix}", len(violations)
    yield f"route_vs_nearest_basis_{suffix}", "same_stops" if same else "per_served_stop"
    yield f"route_vs_nearest_ratio_{suffix}", f"{ratio:.3f}"
    if suffix == "100":
        within = ratio <= RATIO_TARGET_100 and limit <= 10
        yield "route_vs_nearest_ratio_100_within_0_85_in_10s", "yes" if within else "NO"


def routing_figures() -> Iterator[tuple[str, object]]:
    seats = county_seats()
    limit = float(os.environ.get("BENCH_VRP_SECONDS", "10"))
    long_300 = float(os.environ.get("BENCH_VRP_SECONDS_300", "30"))
    yield "route_depot", f"{DEPOT_COUNTY} 梅县区 county service center"
    yield "route_distance_matrix", "haversine x1.3 at 40 km/h"
    for n in SIZES:
        problem, baseline, matrix_s = fair_day(n, seats)
        assert baseline.stats is not None
        yield f"route_stops_{n}", n
        yield f"route_vehicles_{n}", len(problem.vehicles)
        yield f"route_refrigerated_{n}", sum(v.refrigerated for v in problem.vehicles)
        yield f"route_cold_stops_{n}", sum(s.needs_cold for s in problem.stops)
        yield f"route_matrix_s_{n}", f"{matrix_s:.3f}"
        yield f"route_nearest_s_{n}", f"{baseline.stats.seconds:.3f}"
        yield f"route_nearest_km_{n}", f"{baseline.distance_km:.1f}"
        yield f"route_nearest_dropped_{n}", len(baseline.dropped)
        yield f"route_nearest_vehicles_used_{n}", sum(1 for r in baseline.routes if r.visits)
        yield from compare(problem, baseline, limit, str(n))
        if n == 300 and long_300 != limit:
            yield from compare(problem, baseline, long_300, "300_long")


PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "gdm_bench_coldchain"
READINGS_LOGGERS, READINGS_PER_LOGGER, READINGS_BATCH = 10, 10_000, 1_000


def _admin(sql: str) -> None:
    from sqlalchemy import text

    from marketplace.db import make_engine

    engine = make_engine(PG_ADMIN_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(sql))
    engine.dispose()


def _reading_batches(serials: list[str], end: float) -> list[list[dict[str, object]]]:
    """Each logger's week of one-minute readings, 2-4 ℃ with 45 minutes at 7 ℃ a day, in batches."""
    from datetime import UTC, datetime, timedelta

    last = datetime.fromtimestamp(end, UTC).replace(second=0, microsecond=0)
    batches = []
    for serial in serials:
        start = last - timedelta(minutes=READINGS_PER_LOGGER - 1)
        items: list[dict[str, object]] = []
        for i in range(READINGS_PER_LOGGER):
            celsius = 7.0 if 600 <= i % 1440 < 645 else round(3 + math.sin(i / 90), 1)
            items.append(
                {"logger": serial, "at": (start + timedelta(minutes=i)).isoformat(), "celsius": celsius}
            )
        batches += [items[k : k + READINGS_BATCH] for k in range(0, len(items), READINGS_BATCH)]
    return batches


def readings_figures() -> Iterator[tuple[str, object]]:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from domain import Excursion, NodeKind, Role, RoleGrant, TemperatureReading
    from marketplace.db import make_engine
    from services import accounts, places
    from services.logistics import coldchain

    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    engine = make_engine(url)
    try:
        cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
        cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
        cfg.attributes["database_url"] = url
        command.upgrade(cfg, "head")
        data = PROJECT_ROOT / "seed" / "data"
        with Session(engine, expire_on_commit=False) as session:
            places.import_divisions(
                session, places.read_division_files(data / "divisions.csv", data / "coordinates.csv")
            )
            admin = accounts.create_user(
                session, phone="13800009901", password="bench-2026", display_name="bench"
            )
            session.add(RoleGrant(user_id=admin.id, role=Role.ADMIN))
            session.commit()
            session.refresh(admin)
            center = places.create_node(
                session,
                admin,
                NodeKind.COUNTY_CENTER,
                {"division_code": DEPOT_COUNTY, "name": "梅县区县域综合服务中心", "has_cold_storage": True},
            )
            staff = accounts.create_user(
                session, phone="13800009902", password="bench-2026", display_name="staff"
            )
            session.add(RoleGrant(user_id=staff.id, role=Role.COUNTY_STAFF, county_code=DEPOT_COUNTY))
            session.commit()
            session.refresh(staff)
            loggers = [
                coldchain.register_logger(
                    session,
                    staff,
                    serial=f"BENCH-{i:02d}",
                    place=f"node:{center.id}",
                    storage_class="chilled",
                ).logger
                for i in range(READINGS_LOGGERS)
            ]
            batches = _reading_batches([lg.serial for lg in loggers], time.time() - 3600)
            by_serial = {lg.serial: coldchain.Source(logger=lg) for lg in loggers}
            accepted = 0
            started = time.perf_counter()
            for batch in batches:
                accepted += coldchain.ingest_batch(
                    session, by_serial[str(batch[0]["logger"])], batch
                ).accepted
            elapsed = time.perf_counter() - started
            resent = batches[:: len(batches) // 10][:10]
            started = time.perf_counter()
            duplicates = sum(
                coldchain.ingest_batch(session, by_serial[str(b[0]["logger"])], b).duplicates for b in resent
            )
            resend_s = time.perf_counter() - started
            stored = session.scalar(select(func.count()).select_from(TemperatureReading))
            excursions = session.scalar(select(func.count()).select_from(Excursion))
        yield "readings_database", "postgresql"
        yield "readings_total", accepted
        yield "readings_stored", stored
        yield "readings_batches", len(batches)
        yield "readings_batch_size", READINGS_BATCH
        yield "readings_loggers", READINGS_LOGGERS
        yield "readings_excursions", excursions
        yield "readings_ingest_s", f"{elapsed:.2f}"
        yield "readings_per_s", f"{accepted / elapsed:.0f}"
        yield "readings_resend_duplicates", duplicates
        yield "readings_resend_per_s", f"{duplicates / resend_s:.0f}"
    finally:
        engine.dispose()
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def main() -> int:
    parts = os.environ.get("BENCH_LOGISTICS", "routing,readings,scans").split(",")
    if "routing" in parts:
        for key, value in routing_figures():
            print(f"{key}: {value}", flush=True)
    if "readings" in parts:
        for key, value in readings_figures():
            print(f"{key}: {value}", flush=True)
    if "scans" in parts:  # scan ingestion and the trace page over HTTP (bench/_logistics_api.py)
        from _logistics_api import run as scan_figures

        for key, value in scan_figures():
            print(f"{key}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
