"""The village agent's figures (issue 11): `make bench B=agents`.

A PostgreSQL database (`gdm_bench_agents`, dropped after) is migrated and seeded with the demo
(`flask seed`: the demo agent 13800000021 of 大黄村电商服务站), then served by gunicorn the way
`make run` serves it (one worker, eight threads) on a private port on 127.0.0.1, and driven by
Debian's Chromium through Playwright.

- agent_slow3g_usable_s: the agent's workspace (/workspace, logged in), first load with the
  browser cache disabled and no service worker yet, under DevTools network emulation at 400 kbit/s
  down and up with 400 ms round trips (Network.emulateNetworkConditions over CDP): from navigation
  start to a usable page, the later of DOMContentLoaded (the deferred scripts have run) and the
  first contentful paint (the CSS is in, the content shows). The median of ROUNDS loads.
- agent_page_gzip_kb: that page's HTML + its CSS + its JS + the service worker (/sw.js), each
  gzipped at level 6 as a front proxy would, summed. Budgets: 3 s and 40 KB.
- The offline replay: 500 submissions put into the page's offline queue (IndexedDB) the way
  static/js/offline.js stores them — VILLAGERS villager registrations and CASH_ORDERS takings of
  cash for proxy orders placed beforehand through the services, 400 distinct idempotency keys
  and 100 repeats of some of them (a phone that queued the same form twice), shuffled, all with
  a stale CSRF token — then replayed by offline.js itself (ynOffline.replay(): a fresh token, then
  each POST in order) against the server over HTTP. From the database, per key:
  offline_replay_double_applied (rows beyond one: villagers per key, cash attempts per key) and
  offline_replay_lost (keys with no row), both must be 0; the queue's own verdicts
  (offline_replay_refused, offline_replay_not_sent); offline_replay_ms_per_submission (the whole
  replay's time / 500, duplicates included), beside online_submission_ms: the mean of ONLINE
  plain online submissions from the same page in the same mix (four registrations to one cash
  taking), each as its form posts without the queue (the POST, the redirect, the page it leads
  to), and offline_replay_vs_online_ratio (replay per submission / online).

Each figure prints as `name: value`. Absolute times depend on the machine; the ratio does less.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
for path in (PROJECT_ROOT, PROJECT_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from checkout import PG_ADMIN_URL, _admin  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from domain import (  # noqa: E402
    AttemptStatus,
    PaymentAttempt,
    PaymentMethod,
    Product,
    ProductStatus,
    Role,
    User,
    Villager,
)
from marketplace.db import make_engine  # noqa: E402
from services import authz  # noqa: E402
from services.orders import checkout  # noqa: E402
from services.orders.addresses import AddressInput  # noqa: E402
from services.orders.checkout import CheckoutInput  # noqa: E402
from services.orders.pricing import CheckoutSettings  # noqa: E402

PG_DATABASE = "gdm_bench_agents"
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AGENT = "13800000021"
BUYER = "13800000062"  # the villager of record of the cash orders
PASSWORD = "nongye-2026"
PAGE = "/agent"  # the agent's day at a glance
ROUNDS = 5
SLOW3G = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}
USABLE_BUDGET_S, WEIGHT_BUDGET_KB = 3.0, 40.0
SUBMISSIONS, DISTINCT = 500, 400
CASH_ORDERS = 80
VILLAGERS = DISTINCT - CASH_ORDERS
ONLINE = 40  # plain online submissions: 32 registrations and 8 cash takings
OPEN_CAPS = CheckoutSettings(
    free_shipping_from_fen=0,
    max_unpaid_orders=0,
    max_unpaid_units=0,
    max_unpaid_units_per_product=0,
    order_rate_limit=0,
    proxy_order_rate_limit=0,
    max_proxy_unpaid_orders=0,
    max_proxy_unpaid_units=0,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(url: str, instance: Path) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=url,
        INSTANCE_PATH=str(instance),
        # The seed starts its own localstripe there for the demo's paid orders (seed/gateway.py).
        STRIPE_API_BASE=f"http://127.0.0.1:{_free_port()}",
        LOGIN_RATE_LIMIT="1000 per minute",
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p),
    )


def build(url: str, instance: Path) -> None:
    env = _env(url, instance)
    for cmd in ([BIN / "alembic", "upgrade", "head"], [BIN / "flask", "--app", "wsgi", "seed"]):
        done = subprocess.run([str(c) for c in cmd], cwd=PROJECT_ROOT, env=env, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{cmd[-1]} failed:\n{done.stderr.decode()[-3000:]}")


def start_server(
    url: str, instance: Path, app: str = "wsgi:app", probe: str = "/auth/login"
) -> tuple[subprocess.Popen[bytes], str]:
    """`app` served as `make run` serves it (one worker, eight threads), once `probe` answers."""
    port = _free_port()
    log = (instance / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            app,
        ],
        cwd=PROJECT_ROOT,
        env=_env(url, instance),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + probe, timeout=10).status_code == 200:
                return proc, base
        except (requests.ConnectionError, requests.Timeout):  # the worker still importing the app
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"gunicorn did not start; see {instance / 'gunicorn.log'}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cash_orders(url: str) -> tuple[list[str], int]:
    """CASH_ORDERS proxy orders the agent placed for a villager at their point, awaiting cash."""
    engine = make_engine(url)
    numbers: list[str] = []
    with Session(engine) as session:
        agent = session.scalar(select(User).where(User.phone == AGENT))
        buyer = session.scalar(select(User).where(User.phone == BUYER))
        assert agent is not None and buyer is not None
        point = min(authz.node_ids(agent, Role.AGENT))
        products = list(
            session.scalars(
                select(Product.id)
                .where(
                    Product.status == ProductStatus.ACTIVE,
                    Product.presale.is_(False),
                    Product.stock - Product.reserved > 10,
                    Product.seller_id != buyer.id,
                )
                .order_by(Product.id)
            )
        )
        for n in range(CASH_ORDERS + ONLINE // 5):
            placed = checkout.place_order(
                session,
                buyer,
                CheckoutInput(
                    items={products[n % len(products)]: 1},
                    idempotency_key=f"bench-agents-{n:04d}",
                    payment_method="cash",
                    delivery="pickup",
                    pickup_node_id=point,
                    pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
                ),
                OPEN_CAPS,
                placed_by=agent,
            )
            numbers.append(placed.order.number)
        agent_id = agent.id
    engine.dispose()
    return numbers, agent_id


def page_weight(base: str) -> float:
    """HTML + linked CSS and JS + the service worker of the agent's page, gzipped (KB)."""
    s = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', s.get(base + "/auth/login").text)
    assert token is not None
    s.post(base + "/auth/login", data={"csrf_token": token.group(1), "phone": AGENT, "password": PASSWORD})
    html = s.get(base + PAGE).content
    if b"offline.js" not in html:
        raise RuntimeError("the agent's page does not load offline.js: not logged in as the agent?")
    linked = re.findall(rb'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html) + re.findall(
        rb'<script[^>]+src="([^"]+)"', html
    )
    bodies = [html, s.get(base + "/sw.js").content] + [s.get(base + h.decode()).content for h in linked]
    return sum(len(gzip.compress(b, compresslevel=6)) for b in bodies) / 1024


def log_in(page: Any, base: str) -> None:
    page.goto(base + "/auth/login")
    page.fill("input[name=phone]", AGENT)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form.stacked [type=submit]")
    if "/auth/login" in page.url:
        raise RuntimeError("the demo agent could not log in")


def slow3g_usable(browser: Any, base: str) -> float:
    """Median seconds from navigation start to a usable workspace, first load at slow 3G."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", service_workers="block"
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    log_in(page, base)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", SLOW3G)
    times = []
    for _ in range(ROUNDS):
        page.goto(base + PAGE, wait_until="load")
        page.locator("main h1").wait_for(state="visible")
        ms = page.evaluate(
            """() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                return Math.max(nav.domContentLoadedEventEnd, fcp ? fcp.startTime : Infinity);
            }"""
        )
        times.append(ms / 1000)
    context.close()
    return statistics.median(times)


def replay(browser: Any, base: str, numbers: list[str]) -> dict[str, Any]:
    """The 500 queued submissions replayed by offline.js; the online submissions beside them."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(120_000)
    log_in(page, base)
    page.goto(base + "/agent/villagers/")
    user = int(page.get_attribute("#offline-queue", "data-user") or 0)
    village = page.locator("select[name=village_code] option").nth(1).get_attribute("value")
    run = uuid.uuid4().hex[:6]

    def fields(name: str, key: str) -> dict[str, str]:
        return {
            "csrf_token": "stale-token-from-a-page-opened-yesterday",
            "key": key,
            "name": name,
            "village_code": village or "",
            "phone": "",
            "notes": "",
            "consent_method": "in_person",
            "submit": "登记村民",
        }

    def villager(n: int, key: str) -> dict[str, Any]:
        return {"action": base + "/agent/villagers/", "body": urlencode(fields(f"回放{run}{n:03d}", key))}

    def cash(number: str, key: str) -> dict[str, Any]:
        body = {"csrf_token": "stale-token-from-a-page-opened-yesterday", "key": key}
        return {
            "action": f"{base}/agent/cash/orders/{number}",
            "body": urlencode(body),
        }

    rnd = random.Random(20261203)
    distinct = [("villager", uuid.uuid4().hex, n) for n in range(VILLAGERS)] + [
        ("cash", uuid.uuid4().hex, n) for n in range(CASH_ORDERS)
    ]
    queue = distinct + [rnd.choice(distinct) for _ in range(SUBMISSIONS - DISTINCT)]
    rnd.shuffle(queue)
    items = []
    for kind, key, n in queue:
        item = villager(n, key) if kind == "villager" else cash(numbers[n], key)
        item.update(user=user, key=key, label=f"{kind} {n}", queuedAt=0, state="waiting", tries=0, message="")
        items.append(item)

    # Plain online submissions first, in the queue's mix (four registrations to one cash taking):
    # each form as it posts without the queue (POST, the redirect, the page it leads to).
    plain = []
    for n in range(ONLINE):
        if n % 5 == 4:
            number = numbers[CASH_ORDERS + n // 5]
            plain.append([f"/agent/cash/orders/{number}", {"key": uuid.uuid4().hex}])
        else:
            plain.append(["/agent/villagers/", fields(f"在线{run}{n:03d}", uuid.uuid4().hex)])
    online = page.evaluate(
        """async (plain) => {
            const token = document.querySelector('form[data-offline] input[name=csrf_token]').value;
            const times = [];
            for (const [action, fields] of plain) {
                const body = new URLSearchParams(fields);
                body.set('csrf_token', token);
                const t0 = performance.now();
                const r = await fetch(action, {method: 'POST', body});
                await r.text();
                if (!r.ok || !r.redirected) throw new Error(`online ${action}: ${r.status}`);
                times.push(performance.now() - t0);
            }
            return times;
        }""",
        plain,
    )
    outcome, replay_ms, states = page.evaluate(
        """async (items) => {
            for (const item of items) await ynOffline.put(item);
            const t0 = performance.now();
            const outcome = await ynOffline.replay();
            const ms = performance.now() - t0;
            const states = {};
            for (const item of await ynOffline.all()) states[item.state] = (states[item.state] || 0) + 1;
            return [outcome, ms, states];
        }""",
        items,
    )
    context.close()
    return {
        "outcome": outcome,
        "replay_ms": replay_ms,
        "states": states,
        "online_ms": statistics.mean(online),
        "villager_keys": {key for kind, key, _n in distinct if kind == "villager"},
        "cash_keys": {key for kind, key, _n in distinct if kind == "cash"},
    }


def count_rows(url: str, result: dict[str, Any]) -> tuple[int, int]:
    """(rows beyond one per key, keys with no row) in the database."""
    engine = make_engine(url)
    with Session(engine) as session:
        per_key: dict[str | None, int] = {}
        for key, n in session.execute(
            select(Villager.idempotency_key, func.count())
            .where(Villager.idempotency_key.in_(result["villager_keys"]))
            .group_by(Villager.idempotency_key)
        ).all():
            per_key[key] = n
        for key, n in session.execute(
            select(PaymentAttempt.request_key, func.count())
            .where(
                PaymentAttempt.request_key.in_(result["cash_keys"]),
                PaymentAttempt.method == PaymentMethod.CASH,
                PaymentAttempt.status == AttemptStatus.SUCCEEDED,
            )
            .group_by(PaymentAttempt.request_key)
        ).all():
            per_key[key] = n
    engine.dispose()
    keys = result["villager_keys"] | result["cash_keys"]
    double = sum(max(0, per_key.get(k, 0) - 1) for k in keys)
    lost = sum(1 for k in keys if not per_key.get(k))
    return double, lost


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: run `make browser-deps` (Debian's chromium package)", file=sys.stderr)
        return 1
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    instance = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    server = None
    try:
        build(url, instance)
        numbers, _agent_id = cash_orders(url)
        server, base = start_server(url, instance)
        weight = page_weight(base)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic"],
            )
            usable = slow3g_usable(browser, base)
            result = replay(browser, base, numbers)
            browser.close()
        double, lost = count_rows(url, result)
        per_submission = result["replay_ms"] / SUBMISSIONS
        print(f"agent_page: {PAGE}")
        print(f"agent_slow3g_usable_s: {usable:.2f}")
        print(f"agent_slow3g_within_3s: {'yes' if usable <= USABLE_BUDGET_S else 'NO'}")
        print(f"agent_page_gzip_kb: {weight:.1f}")
        print(f"agent_page_within_40kb: {'yes' if weight <= WEIGHT_BUDGET_KB else 'NO'}")
        print(f"offline_replay_submissions: {SUBMISSIONS}")
        print(f"offline_replay_distinct_keys: {DISTINCT}")
        print(f"offline_replay_villager_registrations: {VILLAGERS}")
        print(f"offline_replay_cash_takings: {CASH_ORDERS}")
        print(f"offline_replay_outcome: {result['outcome']}")
        print(f"offline_replay_double_applied: {double}")
        print(f"offline_replay_lost: {lost}")
        print(f"offline_replay_refused: {result['states'].get('refused', 0)}")
        print(f"offline_replay_not_sent: {SUBMISSIONS - result['states'].get('sent', 0)}")
        print(f"offline_replay_ms_per_submission: {per_submission:.1f}")
        print(f"online_submission_ms: {result['online_ms']:.1f}")
        print(f"offline_replay_vs_online_ratio: {per_submission / result['online_ms']:.2f}")
        return 0 if double == 0 and lost == 0 else 1
    finally:
        if server is not None:
            _stop(server)
        _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
