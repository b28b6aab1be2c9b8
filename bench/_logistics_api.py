"""Scan ingestion and the public trace page on PostgreSQL (issue 12), run by bench/logistics.py.

A PostgreSQL database (`gdm_bench_logistics`, dropped after) is migrated and seeded with the demo
(`flask seed`: its parcels travel by scans, so its lots carry hash chains), then served by
gunicorn the way `make run` serves it (one worker, eight threads), with bench/wsgi_bench.py's
/_hello beside the app's routes. Debian's wrk drives each route for BENCH_SCAN_SECONDS (default
10) with CONNECTIONS connections on two threads, one after the other:

- hello: GET /_hello, the baseline;
- scans: POST /api/v1/scans by 梅县's county staff (bearer token), each an "exception" scan
  with its own idempotency key at the county center, over the demo's parcels in turn
  (bench/scans.lua): every request is a new scan the server validates, locks (the sub-order's
  row), authorises, writes and appends to the hash chain of each lot in the parcel; an exception
  moves no state, so the run can go on without running out of parcels.
  scans_per_s, scan_vs_hello_ratio, scan_p95_ms; scans_written (rows in the database after the
  run) must equal scans_answered_2xx, give or take the scans in flight when wrk stops
  (scans_lost_or_doubled: 0);
- the trace page: GET /t/<code> (no login: the page a buyer's phone opens from the QR code) of
  the demo lot with the longest chain, first grown through the services to TRACE_EVENTS (50)
  events (exception scans at 梅县's county center) and given TRACE_READINGS (1,000) readings from
  a chilled logger in the cold store of a node where it stayed (registered by 梅县's staff, sent
  as one batch): the page verifies the whole chain and draws the readings on every request:
  trace_page_p95_ms_one_at_a_time (one connection: the page's own time), then with CONNECTIONS
  at once trace_page_rps, trace_page_p95_ms (one gunicorn worker: requests queue), and GET
  /api/v1/trace/<code>: trace_api_p95_ms. Measured before the scans, which would lengthen its
  chain.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
for path in (PROJECT_ROOT, PROJECT_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from agents import _stop, build, start_server  # noqa: E402
from checkout import PG_ADMIN_URL, _admin  # noqa: E402
from sqlalchemy import text  # noqa: E402

from marketplace.db import make_engine  # noqa: E402

PG_DATABASE = "gdm_bench_logistics"
BIN = Path(sys.executable).parent
WRK = "/usr/bin/wrk"
STAFF = "13800000011"  # 梅县's county staff in the demo
PASSWORD = "nongye-2026"
MEIXIAN = "441403"
CONNECTIONS = 8
APP = "bench.wsgi_bench:app"
LABELS_SQL = "SELECT so.number FROM shipments s JOIN sub_orders so ON so.id = s.sub_order_id ORDER BY so.id"
CENTER_SQL = "SELECT id FROM nodes WHERE kind = 'county_center' AND county_code = :c ORDER BY id LIMIT 1"
DURATION = int(os.environ.get("BENCH_SCAN_SECONDS", "10"))


def wrk(
    url: str, *script_args: str, script: str = "latency.lua", connections: int = CONNECTIONS
) -> dict[str, Any]:
    threads = min(2, connections)
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{DURATION}s", "--timeout", "10s"]
    cmd += ["-s", str(PROJECT_ROOT / "bench" / script), url]
    if script_args:
        cmd += ["--", *script_args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p95 = float(re.search(r"p95_us: (\d+)", out).group(1)) / 1000  # type: ignore[union-attr]
    completed = re.search(r"completed: (\d+)", out)
    status_errors = re.search(r"status_errors: (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p95_ms": p95,
        "completed": int(completed.group(1)) if completed else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else int(status_errors.group(1)) if status_errors else 0,
    }


def _world(url: str) -> tuple[list[str], int, str, int]:
    """The demo's parcel labels, 梅县's county center, and the lot with the longest chain."""
    engine = make_engine(url)
    with engine.connect() as conn:
        labels = list(conn.scalars(text(LABELS_SQL)))
        center = conn.scalar(text(CENTER_SQL), {"c": MEIXIAN})
        code, events = conn.execute(
            text(
                "SELECT l.code, count(e.id) AS n FROM lots l JOIN lot_events e ON e.lot_id = l.id"
                " GROUP BY l.code ORDER BY n DESC, l.code LIMIT 1"
            )
        ).one()
    engine.dispose()
    if not labels or center is None:
        raise RuntimeError("the demo seed has no shipments or no 梅县 county center")
    return labels, int(center), str(code), int(events)


TRACE_EVENTS = 50
TRACE_READINGS = 1000


def _trace_subject(url: str, code: str, center_id: int) -> tuple[int, int]:
    """Grow lot `code`'s chain to TRACE_EVENTS events and give it TRACE_READINGS readings."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from domain import Lot, LotEvent, User, clock
    from services.logistics import coldchain, scans
    from services.logistics.coldchain import Source

    engine = make_engine(url)
    with Session(engine) as session:
        lot = session.scalars(select(Lot).where(Lot.code == code)).one()
        staff = session.scalars(select(User).where(User.phone == STAFF)).one()
        label = lot.sub_order.number
        events = session.scalar(select(func.count()).where(LotEvent.lot_id == lot.id)) or 0
        for i in range(TRACE_EVENTS - events):
            key = f"bench-trace-{code}-{i}"
            scans.record_scan(session, staff, label, "exception", key, node_id=center_id, note="trace")
        managed = {n.id for n in coldchain._managed_nodes(session, staff)}
        now = clock.now()
        stays = [(n, a, b or now) for _v, n, a, b in coldchain.lot_path(session, lot) if n in managed]
        assert stays, "the lot never stayed at a node 梅县's staff manage"
        node_id, start, end = max(stays, key=lambda s: s[2] - s[1])
        registered = coldchain.register_logger(
            session, staff, serial="BENCH-TRACE", place=f"node:{node_id}", storage_class="chilled"
        )
        step = (end - start) / (TRACE_READINGS + 1)
        items = [
            {
                "logger": "BENCH-TRACE",
                "at": (start + step * (i + 1)).isoformat(),
                "celsius": 2.0 + (i % 20) / 10,
            }
            for i in range(TRACE_READINGS)
        ]
        coldchain.ingest_batch(session, Source(logger=registered.logger), items)
        session.commit()
        readings = len(coldchain.readings_for_lot(session, lot))
        events = session.scalar(select(func.count()).where(LotEvent.lot_id == lot.id)) or 0
    engine.dispose()
    return events, readings


def _count_scans(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(text("SELECT count(*) FROM scans WHERE note = 'bench'"))
    engine.dispose()
    return int(n or 0)


def run() -> list[tuple[str, Any]]:
    if not Path(WRK).exists():
        raise RuntimeError(f"{WRK} is missing: run `make bench-deps` (Debian's wrk package)")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    instance = Path(tempfile.mkdtemp(prefix="bench-logistics-"))
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    server = None
    try:
        build(url, instance)
        labels, center, code, _events = _world(url)
        events, readings = _trace_subject(url, code, center)
        server, base = start_server(url, instance, app=APP, probe="/_hello")
        login = {"phone": STAFF, "password": PASSWORD, "name": "bench"}
        token = requests.post(base + "/api/v1/auth/tokens", json=login, timeout=30).json()["token"]
        hello = wrk(base + "/_hello")
        alone = wrk(f"{base}/t/{code}", connections=1)  # one phone at a time: the page's own time
        page = wrk(f"{base}/t/{code}")
        api = wrk(f"{base}/api/v1/trace/{code}")
        verified = 'data-verified="yes"' in requests.get(f"{base}/t/{code}", timeout=30).text
        tag = "bench-" + uuid.uuid4().hex[:8]
        scans = wrk(base + "/api/v1/scans", token, ",".join(labels), str(center), tag, script="scans.lua")
        written = _count_scans(url)
        answered = scans["completed"] - scans["non2xx"]
        extra = written - answered
        return [
            ("scan_parcels", len(labels)),
            ("scan_hello_rps", round(hello["rps"], 1)),
            ("scans_per_s", round(scans["rps"], 1)),
            ("scan_vs_hello_ratio", round(scans["rps"] / hello["rps"], 3)),
            ("scan_p95_ms", round(scans["p95_ms"], 1)),
            ("scans_answered_2xx", answered),
            ("scans_answered_other", scans["non2xx"]),
            ("scans_written", written),
            # wrk stops at its deadline with up to CONNECTIONS scans in flight: the server still
            # writes them, unanswered. Fewer rows than answers, or more than that, is a fault.
            ("scans_lost_or_doubled", 0 if 0 <= extra <= CONNECTIONS else abs(extra)),
            ("trace_lot_events", events),
            ("trace_lot_readings", readings),
            ("trace_chain_verified", "yes" if verified else "NO"),
            ("trace_page_p95_ms_one_at_a_time", round(alone["p95_ms"], 1)),
            ("trace_page_rps", round(page["rps"], 1)),
            ("trace_page_p95_ms", round(page["p95_ms"], 1)),
            ("trace_page_non2xx", page["non2xx"]),
            ("trace_api_p95_ms", round(api["p95_ms"], 1)),
        ]
    finally:
        if server is not None:
            _stop(server)
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    for name, value in run():
        print(f"{name}: {value}")
