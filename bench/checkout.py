"""Issue #4's figures, measured in one run (`make bench B=checkout`): full checkout under load.

One request is one full checkout: `POST /api/v1/orders` prices the cart, takes the stock with a
conditional UPDATE and writes the order in one transaction, then (outside it) creates the
PaymentIntent at the gateway and stores it; the 201 answer carries the payment's client_secret
(checked on every answer: *_without_client_secret).

- checkout_{0,300}ms_*: orders/s, p50 and p99 of full checkouts on PostgreSQL under gunicorn,
  64 concurrent clients, the gateway answering after 0 ms and after 300 ms;
- hello_*: a hello-world route of the same app and server, 64 concurrent clients;
- checkout_latency_hiding_ratio = orders/s at 300 ms / orders/s at 0 ms (target >= 0.8) and
  checkout_vs_hello_ratio = orders/s at 0 ms / hello-world req/s (target >= 0.1);
- contended_*: 200 concurrent buyers on one product of 500 units until it sells out: orders/s,
  p99 of the orders placed, the 409s (sold out) and contended_oversold, computed from the
  database (units in order lines beyond the initial stock), with the database's balance checked.

Beside each figure: the load generator's (wrk's) CPU share of the machine, the errors (non-2xx
answers other than the contended run's 409s, and connect/read/write errors: 0, or the figure is
void), and where the CPU went: the app's, PostgreSQL's (the backends serving the app) and the
fake gateway's shares, their CPU per order, and the foreign share (the rest of the machine's
busy time: other people's work on a shared machine, which the figures then suffer from).

The gateway. localstripe re-pickles its whole state on every write (10-30 writes/s here), so a
latency-only fake in bench/_checkout_fake_gateway.py stands in for it: valid Customer and
PaymentIntent JSON after a set delay, unlimited concurrency (each request waits on its own
timer). The delay is switched between 0 and 300 ms through its control endpoint, so the rounds
of both can alternate on one server.

The database. A fresh PostgreSQL database `gdm_bench_checkout` (dropped afterwards): `alembic
upgrade head`, Guangdong's divisions, the demo categories (services.places, services.catalog),
16 farmers with 256 products of 1,000,000 units each (bulk-inserted), one product of 500 units
for the contended run, and 256 buyers, each with an API token (rows as
services.accounts.issue_api_token writes them, without its password login; one is checked with
services.accounts.authenticate_token) and their gateway Customer already recorded
(gateway_customers). The app makes a buyer's Customer on their first payment; with it recorded,
every order measured costs exactly one gateway call, as in steady state (the fake's counters
confirm it: gateway_intents_per_order, gateway_customers_created).

The server: gunicorn serving bench/wsgi_bench.py (the app as `make run` builds it, plus /_hello),
in the shape docs/deploy.md gives PostgreSQL deployments: 2 workers (one per core) of the gevent
class, up to 1,000 connections each. A checkout waiting on the gateway for 300 ms must not take a
worker with it, so every client's checkout must be able to wait at once, and the kernel does not
split the 64 connections evenly between the workers (gunicorn_connections_per_worker: e.g.
36/28), so each worker must be able to hold them all (and the flash sale's 500 buyers arrive at
once). STRIPE_HTTP_POOL_SIZE=64: pooled gateway connections a worker keeps. Database
connections: the app's pool per process (DATABASE_POOL_SIZE, 15, no overflow).
BENCH_WORKER_CLASS=gthread (with BENCH_THREADS threads a worker, 64 by default) measures the
thread-based shape `make run` uses; BENCH_WORKERS sets the workers (docs/benchmarks.md compares
them).

Is the gateway called outside transactions? First, one client with the gateway at 300 ms while
pg_stat_activity is sampled every 20 ms: a transaction spanning the call would be seen open for
>= 300 ms (single_checkout_300ms_longest_transaction_ms). Under load the same sampler reports
the app's connections (open, and busy in a transaction), the longest transaction seen, and the
connections opened (pg_stat_database.sessions: the pool closes and reopens overflow ones).

The load. wrk (Debian's package; `make bench-deps`) with bench/checkout.lua: one connection per
wrk thread, so a thread's request() and response() alternate and the script times each request
itself (CLOCK_MONOTONIC via LuaJIT's FFI), keeping each order's arrival and latency; unique
idempotency keys (run tag, thread, counter); buyers and products rotated. With 64 clients a
checkout queues for seconds, so a run's first seconds are the line filling up: each checkout run
lasts 14 s and orders, latencies and CPU are counted over its last 8 s. Before each run the app
is left to finish what the last run's clients abandoned (it keeps working on their checkouts).
A warm-up, then two rounds of hello / checkout 0 ms / checkout 300 ms in turn, so a burst of
other work on the shared machine falls on all three: rates are averaged over the rounds, p50
averaged, p99 the worst round's. wrk's CPU time comes from the kernel (/proc while it runs,
wait4 rusage when it exits). Last, the same checkout with 4 clients: what 64-way concurrency
costs per order.

The contended run: 200 wrk threads and connections on the one product, gateway at 0 ms (the most
writes per second on its row). A buyer stops at their first 409; once every buyer has, wrk is
stopped (SIGINT). Orders/s are the orders placed over the time from the first request to the
last order placed (contended_sell_out_s); wrk's CPU share is over that span too. Then the
database must balance: stock >= 0, stock + reserved + sold == 500, order lines == units taken
== reservations, and the client's 201s == orders in the database.

    python bench/checkout.py
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from domain import (  # noqa: E402
    ApiToken,
    GatewayCustomer,
    Product,
    ProductStatus,
    SellerKind,
    SellerProfile,
    StorageClass,
    Unit,
    User,
    clock,
)
from marketplace.db import make_engine  # noqa: E402
from seed.loader import read_json  # noqa: E402
from services import accounts, catalog, places  # noqa: E402

PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "gdm_bench_checkout"
SEED_DATA = PROJECT_ROOT / "seed" / "data"
HERE = Path(__file__).resolve().parent
LUA = HERE / "checkout.lua"
FAKE_GATEWAY = HERE / "_checkout_fake_gateway.py"
BIN = Path(sys.executable).parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CORES = os.cpu_count() or 1
TICKS = os.sysconf("SC_CLK_TCK")

# The server's shape (docs/deploy.md); BENCH_WORKER_CLASS / BENCH_WORKERS / BENCH_THREADS try
# another (docs/benchmarks.md compares them). THREADS: a gthread worker's threads; a gevent
# worker holds up to CONNECTIONS requests at once (gunicorn's default, as deploy.md runs it).
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gevent")
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "64"))
CONNECTIONS = 1000
CLIENTS = 64
FEW_CLIENTS = 4
SELLERS, PRODUCTS, BUYERS = 16, 256, 256
STOCK = 1_000_000
CONTENDED_CLIENTS, CONTENDED_STOCK = 200, 500
SLOW_MS = 300
ORDERS_PATH = "/api/v1/orders"
WARMUP_S, HELLO_S, ROUNDS = 4, 4, 2
# Checkout runs: with 64 clients a checkout waits seconds in line, so a run's first seconds are
# the line filling up; orders and CPU are counted from COUNT_FROM_S to the end.
CHECKOUT_S, COUNT_FROM_S = 14, 6
FEW_S, FEW_COUNT_FROM_S = 6, 2
CONTENDED_MAX_S = 60  # wrk's duration and timeout there: the run ends when every buyer gave up


# --- the database --------------------------------------------------------------------------------


def _admin(sql: str) -> None:
    engine = make_engine(PG_ADMIN_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(sql))
    engine.dispose()


def _villages() -> list[tuple[str, str]]:
    """(village code, county code) of rural villages (村委会), from the divisions file."""
    with (SEED_DATA / "divisions.csv").open(encoding="utf-8") as fh:
        return [
            (row["code"], row["code"][:6])
            for row in csv.DictReader(fh)
            if row["level"] == "village" and row["name"].endswith(("村委会", "村民委员会"))
        ]


def build_database(url: str, *, products: int = PRODUCTS, buyers: int = BUYERS) -> dict[str, Any]:
    """Schema, divisions, categories, sellers, products and buyers with tokens; what the run needs.
    (`products` and `buyers`: how many; bench/campaigns.py's flash sale wants 500 distinct buyers.)"""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")

    engine = make_engine(url)
    villages = _villages()
    with Session(engine) as session:
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
        catalog.import_categories(session, read_json("categories.json"))
        category = next(c.id for c in catalog.categories(session) if c.slug == "citrus")
        now = clock.now()
        sellers = []
        for i in range(SELLERS):
            village, county = villages[(i * 997) % len(villages)]
            user_id = session.execute(
                insert(User).returning(User.id),
                [{"phone": f"137{i:08d}", "password_hash": "!", "display_name": f"农户{i}"}],
            ).scalar_one()
            session.execute(
                insert(SellerProfile),
                [
                    {
                        "user_id": user_id,
                        "kind": SellerKind.FARMER,
                        "shop_name": f"梅县金柚农家{i}",
                        "division_code": village,
                        "county_code": county,
                    }
                ],
            )
            sellers.append((user_id, village, county))

        def product(n: int, stock: int, name: str) -> dict[str, Any]:
            seller_id, village, county = sellers[n % SELLERS]
            return {
                "seller_id": seller_id,
                "listed_by_id": seller_id,
                "category_id": category,
                "name": name,
                "description": "产地直供，现摘现发。",
                "origin_code": village,
                "county_code": county,
                "unit": Unit.BOX,
                "net_weight_g": 5000,
                "price_fen": 5990,
                "stock": stock,
                "storage_class": StorageClass.AMBIENT,
                "status": ProductStatus.ACTIVE,
                "published_at": now - timedelta(days=1),
                "created_at": now,
                "updated_at": now,
            }

        product_ids = list(
            session.scalars(
                insert(Product).returning(Product.id, sort_by_parameter_order=True),
                [product(n, STOCK, f"梅县金柚 {n}号园 5斤装") for n in range(products)],
            )
        )
        contended_id = session.scalars(
            insert(Product).returning(Product.id),
            [product(0, CONTENDED_STOCK, "梅县金柚 限量500箱")],
        ).one()
        buyer_ids = list(
            session.scalars(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [
                    {"phone": f"139{i:08d}", "password_hash": "!", "display_name": f"买家{i}"}
                    for i in range(buyers)
                ],
            )
        )
        # A token row as accounts.issue_api_token writes it (SHA-256 of the secret), without the
        # password login that function starts with.
        tokens = ["gdm_" + secrets.token_urlsafe(32) for _ in buyer_ids]
        session.execute(
            insert(ApiToken),
            [
                {
                    "user_id": uid,
                    "name": "bench",
                    "token_hash": hashlib.sha256(tok.encode()).hexdigest(),
                    "created_at": now,
                    "expires_at": now + timedelta(days=1),
                }
                for uid, tok in zip(buyer_ids, tokens, strict=True)
            ],
        )
        session.execute(
            insert(GatewayCustomer),
            [{"user_id": uid, "customer_id": f"cus_bench{uid:06d}"} for uid in buyer_ids],
        )
        session.commit()
        if accounts.authenticate_token(session, tokens[0]) is None:
            raise RuntimeError("the bench's API tokens are not what services.accounts accepts")
        session.execute(text("ANALYZE"))
        session.commit()
    engine.dispose()
    division = villages[len(villages) // 2][0]  # the buyers' delivery address: a real village
    return {
        "product_ids": product_ids,
        "contended_id": contended_id,
        "tokens": tokens,
        "division": division,
    }


# --- processes -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # still importing
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not start; see {log}")


def start_gateway(instance: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = instance / "gateway.log"
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_GATEWAY), "--port", str(port), "--delay-ms", "0"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/_bench/stats", proc, "the fake gateway", log)
    except RuntimeError:
        _stop(proc)
        raise
    return proc, base


def start_server(url: str, gateway: str, instance: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=url,
        INSTANCE_PATH=str(instance),
        SECRET_KEY="bench-only-" + uuid.uuid4().hex,
        STRIPE_API_BASE=gateway,
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_HTTP_POOL_SIZE=str(THREADS),
        STRIPE_MAX_RETRIES="2",
        RATELIMIT_STORAGE_URI="memory://",
        # The benchmark's few buyers place thousands of unpaid orders: the per-buyer caps (issue 9)
        # would stop them, so they are off here (0 turns each off).
        MAX_UNPAID_ORDERS="0",
        MAX_UNPAID_UNITS="0",
        MAX_UNPAID_UNITS_PER_PRODUCT="0",
        ORDER_RATE_LIMIT="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    log = instance / "gunicorn.log"
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            WORKER_CLASS,
            "--threads",
            str(THREADS),
            "--worker-connections",
            str(CONNECTIONS),
            # A gevent worker closes a connection that sends nothing for `keep-alive` seconds,
            # the first request included (gunicorn's default: 2). The flash-sale crowd connects
            # first and asks all at once up to 8 s later (bench/campaigns.py): with the default,
            # every buyer's connection was closed under it and wrk counted a read error each.
            "--keep-alive",
            "15",
            "--chdir",
            str(PROJECT_ROOT),
            "bench.wsgi_bench:app",
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/_hello", proc, "gunicorn", log)
    except RuntimeError:
        _stop(proc)
        raise
    return proc, base


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ticks(pid: int, children: bool = False) -> int:
    """utime + stime of a process in clock ticks; with `children`, plus its live children's and
    its reaped children's (gunicorn's workers)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                total += _ticks(int(child))
    return total


def _machine_busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# --- load ----------------------------------------------------------------------------------------


class Sampler:
    """Watches the app's side of PostgreSQL while a run lasts, every 20 ms: its connections (open,
    and busy: in a transaction), the oldest open transaction, the CPU time of the backends
    serving it (read from /proc as they come and go: the pool opens and closes overflow
    connections), and how many connections were opened (pg_stat_database.sessions)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._reset()

    def _reset(self) -> None:
        self.open = self.busy = 0
        self.tx_age_ms = 0.0
        self.first: dict[int, int] = {}  # backend pid -> CPU ticks when first seen (0: born in the run)
        self.last: dict[int, int] = {}
        self.sessions = 0

    def __enter__(self) -> Sampler:
        self._reset()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.stop.clear()

    def _run(self, ready: threading.Event) -> None:
        query = text(
            "SELECT pid, xact_start IS NOT NULL,"
            " coalesce(extract(epoch FROM clock_timestamp() - xact_start) * 1000, 0)"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        sessions = text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            sessions_before = conn.execute(sessions).scalar_one()
            started = True
            while True:
                rows = conn.execute(query).all()
                for pid, _busy, _age in rows:
                    ticks = _ticks(pid)
                    if pid not in self.first:
                        self.first[pid] = ticks if started else 0
                    self.last[pid] = max(ticks, self.last.get(pid, 0))
                self.open = max(self.open, len(rows))
                self.busy = max(self.busy, sum(1 for r in rows if r[1]))
                self.tx_age_ms = max([self.tx_age_ms, *(float(r[2]) for r in rows)])
                if started:
                    started = False
                    ready.set()
                if self.stop.wait(0.02):
                    break
            self.sessions = conn.execute(sessions).scalar_one() - sessions_before

    def cpu_ticks(self) -> int:
        """CPU ticks the app's backends have spent since the sampling started."""
        return sum(self.last[pid] - self.first[pid] for pid in list(self.last))

    def close(self) -> None:
        self.engine.dispose()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * pct / 100) - 1)]


def wrk(
    url: str,
    *,
    threads: int,
    connections: int,
    duration: float,
    script_args: list[str] | None = None,
    watch: Callable[[int], bool] | None = None,
    others: dict[str, Callable[[], int]] | None = None,
    timeout_s: int = 10,
    count_from_s: float = 0.0,
) -> dict[str, Any]:
    """Run wrk and return what it measured and what the machine spent meanwhile.

    Counting starts `count_from_s` after wrk starts: CPU times (wrk's, and of each of `others`,
    callables returning clock ticks), the machine's busy share and, with the checkout script,
    the orders placed and their latencies are taken over [count_from_s, end of the run] only.
    With 64 clients and seconds of queueing, the first seconds of a closed-loop run are the
    pipeline filling up, not the steady state. `watch`, if given, is called with wrk's pid every
    0.05 s; when it returns True wrk is stopped with SIGINT (it then reports as at its end)."""
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--timeout", f"{timeout_s}s"]
    cmd.append("--latency")
    if script_args is not None:
        cmd += ["-s", str(LUA), url, "--", *script_args]
    else:
        cmd.append(url)

    def snapshot(pid: int, wrk_ticks: float | None = None) -> dict[str, float]:
        busy, total = _machine_busy()
        snap = {"t": time.monotonic(), "busy": busy, "total": total}
        snap["wrk"] = wrk_ticks if wrk_ticks is not None else _ticks(pid)
        for name, ticks in (others or {}).items():
            snap[name] = ticks()
        return snap

    with tempfile.TemporaryFile() as log:  # a file, not a pipe: wrk may print more than a pipe holds
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        begun = time.monotonic()
        first = snapshot(proc.pid, 0.0) if count_from_s <= 0 else None
        while True:
            waited = os.wait4(proc.pid, os.WNOHANG)  # not proc.poll(): it would lose the rusage
            if waited[0]:
                break
            if first is None and time.monotonic() - begun >= count_from_s:
                first = snapshot(proc.pid)
            if watch is not None and watch(proc.pid):
                proc.send_signal(signal.SIGINT)
                watch = None
            time.sleep(0.05)
        _pid, status, usage = waited
        last = snapshot(proc.pid, (usage.ru_utime + usage.ru_stime) * TICKS)
        log.seek(0)
        out = log.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out}")
    if first is None:
        raise RuntimeError(f"wrk ended before {count_from_s} s: {out}")
    window = last["t"] - first["t"]
    result: dict[str, Any] = {"out": out, "window_s": window}
    result["machine_busy"] = (last["busy"] - first["busy"]) / max(1, last["total"] - first["total"])
    for name in ("wrk", *(others or {})):
        result[f"{name}_cpu_s"] = (last[name] - first[name]) / TICKS
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if summary is None:
        raise RuntimeError(f"wrk printed no summary: {out}")
    result["requests"] = int(summary.group(1))
    result["runtime_s"] = (
        float(summary.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[summary.group(3)]
    )
    for pct in ("50", "99"):
        found = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        result[f"wrk_p{pct}_ms"] = _ms(*found.groups()) if found else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(g) for g in sock.groups()) if sock else 0
    result["timeouts"] = int(sock.group(4)) if sock else 0
    if script_args is not None:
        result["status"] = {int(s): int(n) for s, n in re.findall(r"bench_status_(\d+): (\d+)", out)}
        missing = re.search(r"bench_missing_secret: (\d+)", out)
        result["missing_secret"] = int(missing.group(1)) if missing else 0
        sent = re.search(r"bench_first_sent_us: (\d+)", out)
        result["first_sent_s"] = int(sent.group(1)) / 1e6 if sent else 0.0
        # (arrival, latency) of every order placed, in seconds on CLOCK_MONOTONIC (as time.monotonic)
        placed = [
            (int(at) / 1e6, int(lat) / 1e6)
            for line in re.findall(r"bench_placed_\d+: ([\d: ]*)", out)
            for at, lat in (pair.split(":") for pair in line.split())
        ]
        counted = [lat for at, lat in placed if at >= first["t"]]
        result["placed_all"] = len(placed)
        result["placed"] = len(counted)
        result["last_placed_s"] = max((at for at, _ in placed), default=0.0)
        result["orders_per_s"] = len(counted) / window
        result["p50_ms"] = _percentile(counted, 50) * 1000
        result["p99_ms"] = _percentile(counted, 99) * 1000
    return result


def _drain(pid: int) -> None:
    """Wait until the app is idle: requests abandoned by the last wrk (its clients left with
    their checkouts in flight) would otherwise run into the next measurement."""
    deadline = time.monotonic() + 60
    before = _ticks(pid, children=True)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _ticks(pid, children=True)
        if now - before <= 0.3 * TICKS * 0.05:  # under 5 % of a core
            return
        before = now


def _preflight(base: str, built: dict[str, Any]) -> None:
    """One checkout before the load: a 201 with the payment's client_secret, or stop here."""
    body = {
        "items": [{"product_id": built["product_ids"][0], "quantity": 1}],
        "idempotency_key": "preflight-" + secrets.token_hex(4),
        "payment_method": "card",
        "delivery": "home",
        "address": {
            "recipient": "陈小姐",
            "phone": "13912345678",
            "division_code": built["division"],
            "detail": "幸福路8号",
        },
    }
    resp = requests.post(
        base + ORDERS_PATH, json=body, headers={"Authorization": f"Bearer {built['tokens'][0]}"}, timeout=30
    )
    if resp.status_code != 201 or not (resp.json().get("payment") or {}).get("client_secret"):
        raise RuntimeError(
            f"a checkout did not place an order with a payment: {resp.status_code} {resp.text}"
        )


def _set_delay(gateway: str, ms: int) -> None:
    requests.post(f"{gateway}/_bench/delay?ms={ms}", timeout=5).raise_for_status()


def _connections_per_worker(port: int, server: subprocess.Popen[bytes]) -> str:
    """Established client connections each worker holds (how the kernel split wrk's 64)."""
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        established = [
            line.split()
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if line.split()[3] == "01" and int(line.split()[1].split(":")[1], 16) == port
        ]
        out = []
        for pid in children:
            inodes = set()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            out.append(str(sum(1 for parts in established if parts[9] in inodes)))
        return "/".join(out)
    except OSError:  # a worker or a socket went away while looking
        return "n/a"


# --- the run -------------------------------------------------------------------------------------


def _share(r: dict[str, Any], name: str) -> float:
    """CPU seconds of `name` over the counted window and the machine's cores."""
    return r[f"{name}_cpu_s"] / r["window_s"] / CORES


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def figures() -> Iterator[tuple[str, Any]]:
    """The figures, one (name, value) at a time, as they are measured."""
    if not Path(WRK).exists():
        raise SystemExit("wrk is missing: run `make bench-deps` (Debian's wrk package)")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    instance = Path(tempfile.mkdtemp(prefix="gdm-bench-checkout-"))
    procs: list[subprocess.Popen[bytes]] = []
    sampler: Sampler | None = None
    try:
        started = time.perf_counter()
        built = build_database(url)
        yield "checkout_build_s", round(time.perf_counter() - started, 1)
        tokens_file = instance / "tokens.txt"
        tokens_file.write_text("\n".join(built["tokens"]) + "\n")
        gateway_proc, gateway = start_gateway(instance)
        procs.append(gateway_proc)
        server, base = start_server(url, gateway, instance)
        procs.append(server)
        _preflight(base, built)
        sampler = Sampler(url)
        others: dict[str, Callable[[], int]] = {
            "gateway": lambda: _ticks(gateway_proc.pid),
            "app": lambda: _ticks(server.pid, children=True),
            "postgres": sampler.cpu_ticks,
        }
        products = ",".join(str(p) for p in built["product_ids"])
        tag = "bench" + secrets.token_hex(3)
        port = int(base.rsplit(":", 1)[1])
        split: list[str] = []

        def checkout(
            name: str, delay_ms: int, duration: float, count_from: float, clients: int = CLIENTS
        ) -> dict[str, Any]:
            _drain(server.pid)
            _set_delay(gateway, delay_ms)
            begun = time.monotonic()

            def look_at_split(_wrk: int) -> bool:  # once, mid-run: how the kernel split wrk's connections
                if not split and clients == CLIENTS and time.monotonic() - begun > 2:
                    split.append(_connections_per_worker(port, server))
                return False

            args = [str(tokens_file), products, f"{tag}{name}", "go", built["division"], str(clients)]
            assert sampler is not None
            with sampler:
                r = wrk(
                    base + ORDERS_PATH,
                    threads=clients,
                    connections=clients,
                    duration=duration,
                    script_args=args,
                    others=others,
                    watch=look_at_split,
                    count_from_s=count_from,
                )
            r["db_open"], r["db_busy"], r["db_tx_age_ms"] = sampler.open, sampler.busy, sampler.tx_age_ms
            r["db_sessions"] = sampler.sessions
            return r

        def hello(duration: float) -> dict[str, Any]:
            _drain(server.pid)
            assert sampler is not None
            with sampler:
                return wrk(base + "/_hello", threads=2, connections=CLIENTS, duration=duration, others=others)

        # Is the gateway called outside any transaction? One client, gateway at 300 ms: a
        # transaction spanning the call would stay open >= 300 ms.
        probe = checkout("p", SLOW_MS, 3, 0, clients=1)
        yield "single_checkout_300ms_p50_ms", round(probe["p50_ms"], 1)
        yield "single_checkout_300ms_longest_transaction_ms", round(probe["db_tx_age_ms"], 1)
        yield "gateway_call_outside_transactions", "yes" if probe["db_tx_age_ms"] < SLOW_MS else "NO"

        # Warm-up: both workers import, connect, fill their pools; not counted.
        checkout("w", 0, WARMUP_S, 0)
        hello(WARMUP_S)
        rounds: dict[str, list[dict[str, Any]]] = {"hello": [], "checkout_0ms": [], "checkout_300ms": []}
        for i in range(ROUNDS):
            rounds["hello"].append(hello(HELLO_S))
            rounds["checkout_0ms"].append(checkout(f"r{i}a", 0, CHECKOUT_S, COUNT_FROM_S))
            rounds["checkout_300ms"].append(checkout(f"r{i}b", SLOW_MS, CHECKOUT_S, COUNT_FROM_S))

        rate: dict[str, float] = {}
        for name, rs in rounds.items():
            if name == "hello":
                rate[name] = _mean(r["requests"] / r["runtime_s"] for r in rs)
                yield "hello_req_per_s", round(rate[name], 1)
                yield "hello_p50_ms", round(_mean(r["wrk_p50_ms"] for r in rs), 2)
                yield "hello_p99_ms", round(max(r["wrk_p99_ms"] for r in rs), 2)
            else:
                rate[name] = _mean(r["orders_per_s"] for r in rs)
                yield f"{name}_orders_per_s", round(rate[name], 1)
                yield f"{name}_p50_ms", round(_mean(r["p50_ms"] for r in rs), 1)
                yield f"{name}_p99_ms", round(max(r["p99_ms"] for r in rs), 1)
            yield f"{name}_generator_cpu_share", round(_mean(_share(r, "wrk") for r in rs), 3)
            yield f"{name}_errors", sum(r["non2xx"] + r["socket_errors"] - r["timeouts"] for r in rs)
            # wrk's "timeouts" are answers that came after 10 s: counted, not lost
            yield f"{name}_slower_than_10s", sum(r["timeouts"] for r in rs)
            if name != "hello":
                yield f"{name}_without_client_secret", sum(r["missing_secret"] for r in rs)
                orders = sum(r["placed"] for r in rs) or 1
                for part in ("app", "postgres"):
                    spent = sum(r[f"{part}_cpu_s"] for r in rs)
                    yield f"{name}_{part}_cpu_ms_per_order", round(spent / orders * 1000, 1)
                yield f"{name}_db_connections_open_max", max(r["db_open"] for r in rs)
                yield f"{name}_db_connections_busy_max", max(r["db_busy"] for r in rs)
                yield f"{name}_db_longest_transaction_ms", round(max(r["db_tx_age_ms"] for r in rs), 1)
                yield f"{name}_db_connections_opened", sum(r["db_sessions"] for r in rs)
            for part in ("app", "postgres", "gateway"):
                yield f"{name}_{part}_cpu_share", round(_mean(_share(r, part) for r in rs), 3)
            # What else ran on the machine meanwhile (other people's work): not ours to measure.
            ours = ("wrk", "app", "postgres", "gateway")
            foreign = _mean(r["machine_busy"] - sum(_share(r, p) for p in ours) for r in rs)
            yield f"{name}_foreign_cpu_share", round(max(0.0, foreign), 3)
        yield "gunicorn_connections_per_worker", split[0] if split else "n/a"
        yield "checkout_latency_hiding_ratio", round(rate["checkout_300ms"] / rate["checkout_0ms"], 2)
        yield "checkout_vs_hello_ratio", round(rate["checkout_0ms"] / rate["hello"], 4)

        # The same checkout with 4 clients instead of 64: what concurrency costs.
        few = checkout("f", 0, FEW_S, FEW_COUNT_FROM_S, clients=FEW_CLIENTS)
        prefix = f"checkout_0ms_{FEW_CLIENTS}_clients"
        yield f"{prefix}_orders_per_s", round(few["orders_per_s"], 1)
        yield f"{prefix}_p50_ms", round(few["p50_ms"], 1)
        for part in ("app", "postgres"):
            yield (
                f"{prefix}_{part}_cpu_ms_per_order",
                round(few[f"{part}_cpu_s"] / max(1, few["placed"]) * 1000, 1),
            )
        yield f"{prefix}_errors", few["non2xx"] + few["socket_errors"] - few["timeouts"]

        _drain(server.pid)
        yield from contended(url, base, gateway, built, tokens_file, tag, others, sampler)

        stats = requests.get(gateway + "/_bench/stats", timeout=5).json()
        engine = make_engine(url)
        with engine.connect() as conn:
            orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
            no_intent = conn.execute(
                text("SELECT count(*) FROM payments WHERE intent_id IS NULL")
            ).scalar_one()
        engine.dispose()
        intents = stats.get("POST /v1/payment_intents 200", 0)
        yield "orders_in_database", orders
        yield "orders_without_payment_intent", no_intent
        yield "gateway_intents_per_order", round(intents / orders, 3) if orders else "n/a"
        yield "gateway_customers_created", stats.get("POST /v1/customers 200", 0)
        logged = (instance / "gunicorn.log").read_text(errors="replace")
        yield "app_tracebacks_logged", logged.count("Traceback")
    finally:
        if sampler is not None:
            sampler.close()
        for proc in reversed(procs):
            _stop(proc)
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        shutil.rmtree(instance, ignore_errors=True)


def run() -> list[tuple[str, Any]]:
    return list(figures())


def contended(
    url: str,
    base: str,
    gateway: str,
    built: dict[str, Any],
    tokens_file: Path,
    tag: str,
    others: dict[str, Callable[[], int]],
    sampler: Sampler,
) -> list[tuple[str, Any]]:
    """200 buyers on one product of 500 units until it sells out; the database must balance."""
    pid = built["contended_id"]
    _set_delay(gateway, 0)
    engine = make_engine(url)
    stock_sql = text("SELECT stock, reserved, sales_count FROM products WHERE id = :id")

    most = [0]

    def all_gave_up(wrk_pid: int) -> bool:
        # A buyer's wrk thread ends at its first 409, with no request of its own in flight;
        # once the threads have started and only wrk's main thread is left, every request has
        # been answered. (SIGINT before wrk set its handler would kill it: wait for the threads.)
        try:
            tasks = len(os.listdir(f"/proc/{wrk_pid}/task"))
        except OSError:
            return False
        most[0] = max(most[0], tasks)
        return most[0] > CONTENDED_CLIENTS and tasks <= 1

    with sampler:
        r = wrk(
            base + ORDERS_PATH,
            threads=CONTENDED_CLIENTS,
            connections=CONTENDED_CLIENTS,
            duration=CONTENDED_MAX_S,
            script_args=[
                str(tokens_file),
                str(pid),
                f"{tag}c",
                "stop",
                built["division"],
                str(CONTENDED_CLIENTS),
            ],
            watch=all_gave_up,
            others=others,
            timeout_s=CONTENDED_MAX_S,
        )
    with engine.connect() as conn:
        stock, reserved, sold = conn.execute(stock_sql, {"id": pid}).one()
        orders, units = conn.execute(
            text(
                "SELECT count(DISTINCT s.order_id), coalesce(sum(l.quantity), 0) FROM order_lines l"
                " JOIN sub_orders s ON s.id = l.sub_order_id WHERE l.product_id = :id"
            ),
            {"id": pid},
        ).one()
        held = conn.execute(
            text("SELECT coalesce(sum(quantity), 0) FROM stock_reservations WHERE product_id = :id"),
            {"id": pid},
        ).scalar_one()
    engine.dispose()
    placed = r["placed_all"]
    # from the first request sent to the last order placed: the sell-out
    span = r["last_placed_s"] - r["first_sent_s"] if placed else 0.0
    status = r["status"]
    conflicts = status.get(409, 0)
    errors = sum(n for s, n in status.items() if not (200 <= s < 300 or s == 409))
    errors += r["socket_errors"] - r["timeouts"]
    balanced = stock >= 0 and stock + reserved + sold == CONTENDED_STOCK and units == reserved + sold == held
    return [
        ("contended_clients", CONTENDED_CLIENTS),
        ("contended_initial_stock", CONTENDED_STOCK),
        ("contended_orders_per_s", round(placed / span, 1) if span else "n/a"),
        ("contended_sell_out_s", round(span, 1)),
        ("contended_p50_ms", round(r["p50_ms"], 1)),
        ("contended_p99_ms", round(r["p99_ms"], 1)),
        ("contended_generator_cpu_share", round(r["wrk_cpu_s"] / max(span, 1e-9) / CORES, 3)),
        ("contended_app_cpu_ms_per_order", round(r["app_cpu_s"] / max(1, placed) * 1000, 1)),
        ("contended_postgres_cpu_ms_per_order", round(r["postgres_cpu_s"] / max(1, placed) * 1000, 1)),
        ("contended_db_connections_opened", sampler.sessions),
        ("contended_placed", placed),
        ("contended_409s", conflicts),
        ("contended_errors", errors),
        ("contended_slower_than_60s", r["timeouts"]),
        ("contended_orders_in_database", orders),
        ("contended_units_ordered", units),
        ("contended_stock_left", stock),
        ("contended_stock_balanced", "yes" if balanced else "NO"),
        ("contended_placed_matches_database", "yes" if placed == orders else "NO"),
        ("contended_oversold", max(0, units - CONTENDED_STOCK)),
    ]


if __name__ == "__main__":
    for key, value in figures():
        print(f"{key}: {value}", flush=True)
