"""The village agent loses nothing when the connection drops (issue 11, item 7), in headless
Chromium on a 360×740 phone against the seeded server: the agent opens their pages online (the
service worker keeps them), goes offline (Playwright's context.set_offline), opens the pages again
from the worker's cache, registers two villagers and takes the cash for a proxy order (twice:
the second press must come back refused, with its message, not dropped), sees them waiting in the
header and the list, comes back online, and the queue replays itself. The server's database then
holds each exactly once; replaying the sent ones again (their answers lost) applies nothing.
Logging out empties the page cache. Without JavaScript the forms post as before.

The proxy order the cash is taken for is placed in the test's set-up through the services, on the
server's own SQLite file. Screenshots: test-artifacts/browser/offline-*.png.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from domain import (
    AttemptStatus,
    Order,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Product,
    ProductStatus,
    Role,
    User,
    Villager,
    clock,
)
from marketplace.db import make_engine
from services import authz, ledger
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from services.payments.service import payment_of

pytestmark = pytest.mark.browser

# Playwright takes a service worker's own requests offline with the page (context.set_offline)
# only when it watches the workers' network; without this the worker's fetches (its network-first
# pages, Background Sync's replay) still reach the server while the page is "offline". Read when
# the Playwright driver starts (the session's `browser` fixture), after every module is imported.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")

DEMO_PASSWORD = "nongye-2026"
AGENT = "13800000021"  # 大黄村电商服务站 (梅县区)
VILLAGER_BUYER = "13800000062"  # a seeded buyer, the villager of record of the proxy order

# The seeded buyer has placed many orders lately: the caps are checkout's business, not this test's.
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
QUEUE_STATES = "Array.from(document.querySelectorAll('#offline-queue li')).map(li => li.dataset.state)"


@pytest.fixture(scope="module")
def database(server, tmp_path_factory) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """The server's own SQLite file (tests/browser/conftest.py `server` makes one instance)."""
    found = sorted({p.resolve() for p in tmp_path_factory.getbasetemp().glob("instance*/marketplace.db")})
    assert len(found) == 1, found
    engine = make_engine(f"sqlite:///{found[0]}")
    yield engine
    engine.dispose()


@pytest.fixture()
def cash_order(database) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """A proxy order the agent placed for a villager at their point, waiting for its cash:
    (number, total in fen, the agent's id)."""
    # The server runs on the machine's clock; the tests' product clock starts at a fixed instant.
    with Session(database) as session, clock.installed(clock.SystemClock()):
        agent = session.scalar(select(User).where(User.phone == AGENT))
        buyer = session.scalar(select(User).where(User.phone == VILLAGER_BUYER))
        assert agent is not None and buyer is not None
        point = min(authz.node_ids(agent, Role.AGENT))
        product = session.scalars(
            select(Product)
            .where(
                Product.status == ProductStatus.ACTIVE,
                Product.presale.is_(False),
                Product.stock - Product.reserved > 5,
                Product.seller_id != buyer.id,
            )
            .order_by(Product.id)
        ).first()
        assert product is not None
        placed = checkout.place_order(
            session,
            buyer,
            CheckoutInput(
                items={product.id: 1},
                idempotency_key=checkout.new_idempotency_key(),
                payment_method="cash",
                delivery="pickup",
                pickup_node_id=point,
                pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
            ),
            OPEN_CAPS,
            placed_by=agent,
        )
        assert payment_of(session, placed.order).status == PaymentStatus.AWAITING_CASH
        return placed.order.number, placed.order.total_fen, agent.id


def wait_for(page, script: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    """page.wait_for_function evaluates a string in the page, which its CSP forbids: poll instead
    (page.evaluate runs as DevTools, outside the CSP)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout}s: {script}")
        time.sleep(0.1)


def under_the_worker(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the service worker is active and controls the page (the page that installed it
    may have gone on before it activated: the next load is controlled)."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    if not page.evaluate("navigator.serviceWorker.controller !== null"):
        page.reload()
    wait_for(page, "navigator.serviceWorker.controller !== null")


def queue_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#offline-queue").inner_text()


def phone_context(browser, *, javascript: bool = True):  # type: ignore[no-untyped-def]
    return browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        # A phone's language reaches its service worker's requests too; Playwright's `locale`
        # emulates it for the page only (the worker precaches the offline page in it).
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        java_script_enabled=javascript,
    )


def log_in(page, server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/auth/login")
    page.fill("input[name=phone]", AGENT)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form.stacked [type=submit]")
    assert "/auth/login" not in page.url, page.locator("main").inner_text()


def register(page, name: str) -> None:  # type: ignore[no-untyped-def]
    form = page.locator("form[data-offline]")
    form.locator("input[name=name]").fill(name)
    form.locator("select[name=village_code]").select_option(index=1)
    form.locator("input[name=submit]").click()


def villager_rows(database: Engine, *names: str) -> dict[str, int]:
    with Session(database) as session:
        rows = session.execute(
            select(Villager.name, func.count()).where(Villager.name.in_(names)).group_by(Villager.name)
        ).all()
    return {name: n for name, n in rows}


def cash_state(database: Engine, number: str, agent_id: int) -> tuple[PaymentStatus, int, int]:
    """The payment's status, its cash attempts that succeeded, and the cash the agent holds."""
    with Session(database) as session:
        order = session.scalar(select(Order).where(Order.number == number))
        assert order is not None
        payment = payment_of(session, order)
        attempts = session.scalar(
            select(func.count()).where(
                PaymentAttempt.payment_id == payment.id,
                PaymentAttempt.method == PaymentMethod.CASH,
                PaymentAttempt.status == AttemptStatus.SUCCEEDED,
            )
        )
        return payment.status, int(attempts or 0), ledger.balance(session, ledger.cash_held_code(agent_id))


class TestOfflineQueue:
    def test_offline_entries_are_sent_once_when_the_connection_returns(
        self, browser, server, database, cash_order, shot
    ):
        number, total, agent_id = cash_order
        tag = uuid.uuid4().hex[:4]
        first, second = f"离线甲{tag}", f"离线乙{tag}"
        context = phone_context(browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))

        # Online: log in and open the pages; the service worker takes over and keeps them.
        log_in(page, server)
        page.goto(server + "/agent/villagers/")
        under_the_worker(page)
        for path in ("/workspace", "/agent/cash", "/agent/villagers/"):
            page.goto(server + path)
            page.wait_for_load_state()
        assert page.locator("#offline-queue").is_hidden()  # nothing waiting: nothing shown
        assert page.locator("#offline-count").count() == 0 or page.locator("#offline-count").is_hidden()
        held_before = cash_state(database, number, agent_id)[2]

        # Offline: the pages open from the worker's cache, and each form is kept on the phone.
        context.set_offline(True)
        page.goto(server + "/agent/villagers/")
        assert page.evaluate("navigator.onLine") is False
        register(page, first)
        wait_for(page, f"({QUEUE_STATES}).length === 1")
        assert page.locator("#offline-queue [role=status]").inner_text().startswith("网络不通")
        assert page.locator("#offline-count b").inner_text() == "1"
        # The same cached page again (the same key in its HTML): a second villager, a new key.
        page.goto(server + "/agent/villagers/")
        register(page, second)
        wait_for(page, f"({QUEUE_STATES}).length === 2")

        page.goto(server + "/agent/cash")
        take = page.locator("li", has_text=number).locator("form[data-offline] button")
        take.click()
        wait_for(page, f"({QUEUE_STATES}).length === 3")
        take.click()  # pressed again by mistake: also kept, the server will refuse it
        wait_for(page, f"({QUEUE_STATES}).length === 4")
        assert page.evaluate(QUEUE_STATES) == ["waiting"] * 4
        assert page.locator("#offline-count b").inner_text() == "4"
        labels = page.locator("#offline-queue li .title").all_inner_texts()
        assert labels[:2] == [f"登记村民: {first}", f"登记村民: {second}"]
        assert labels[2] == labels[3] == f"已收现金: {number} · 陈阿婆", labels
        shot(page, "offline-1-waiting")
        # TODO(coordinator): once /agent/proxy (H1), /agent/intake (H3) and /agent/parcels (H2)
        # carry data-offline, record here offline: a proxy order for a villager, an intake by
        # weight and a pickup confirmation with its code; then assert each exactly once below.

        # Nothing reached the server.
        assert villager_rows(database, first, second) == {}
        assert cash_state(database, number, agent_id) == (PaymentStatus.AWAITING_CASH, 0, held_before)

        # Online again: the queue sends itself, in order, each once.
        context.set_offline(False)
        wait_for(page, f"({QUEUE_STATES}).filter(s => s !== 'waiting').length === 4", timeout=30)
        assert page.evaluate(QUEUE_STATES) == ["sent", "sent", "sent", "refused"], queue_text(page)
        refused = page.locator("#offline-queue li[data-state=refused]")
        assert "已经付款" in refused.locator(".field-error").inner_text()
        assert page.locator("#offline-count b").inner_text() == "1"  # the refused one asks for a look
        shot(page, "offline-2-sent")
        assert villager_rows(database, first, second) == {first: 1, second: 1}
        assert cash_state(database, number, agent_id) == (PaymentStatus.SUCCEEDED, 1, held_before + total)

        # The answers were lost (say): the sent ones go again, with their keys. Nothing new.
        page.evaluate(
            """async () => {
                for (const item of await ynOffline.all()) {
                    if (item.state === 'sent') { item.state = 'waiting'; await ynOffline.put(item); }
                }
                return ynOffline.replay();
            }"""
        )
        page.reload()
        wait_for(page, f"({QUEUE_STATES}).filter(s => s !== 'waiting').length === 4")
        assert page.evaluate(QUEUE_STATES) == ["sent", "sent", "sent", "refused"], queue_text(page)
        tries = "ynOffline.all().then(items => items.filter(i => i.user === %d).map(i => i.tries))"
        assert page.evaluate(tries % agent_id) == [2, 2, 2, 1]  # they did go to the server again
        assert villager_rows(database, first, second) == {first: 1, second: 1}
        assert cash_state(database, number, agent_id) == (PaymentStatus.SUCCEEDED, 1, held_before + total)

        # The refused one stays until the agent removes it.
        refused.locator("button[data-remove]").click()
        wait_for(page, f"({QUEUE_STATES}).length === 3")
        assert page.locator("#offline-count").is_hidden()

        # Logging out empties the worker's page cache: the next person sees none of these pages.
        page.goto(server + "/auth/logout")
        with page.expect_navigation():
            page.click("form[action='/auth/logout'] button[type=submit]")
        wait_for(
            page,
            """async () => {
                const names = (await caches.keys()).filter(n => n.startsWith('yn-pages-'));
                let n = 0;
                for (const name of names) n += (await (await caches.open(name)).keys()).length;
                return n === 0;
            }""",
        )
        assert problems == []
        context.close()

    def test_a_page_never_opened_shows_the_offline_page(self, browser, server):
        context = phone_context(browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, server)
        page.goto(server + "/workspace")
        under_the_worker(page)
        page.goto(server + "/workspace")  # kept by the worker now
        context.set_offline(True)
        page.goto(server + "/agent/villagers/?q=never-opened")
        assert page.locator("h1").inner_text() == "当前没有网络"
        page.goto(server + "/workspace")
        assert page.locator("h1").inner_text() == "我的工作台"
        context.set_offline(False)
        context.close()

    def test_without_javascript_the_form_posts_as_before(self, browser, server, database):
        context = phone_context(browser, javascript=False)
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, server)
        page.goto(server + "/agent/villagers/")
        assert page.locator("#offline-queue").is_hidden()
        name = f"无脚本{uuid.uuid4().hex[:4]}"
        with page.expect_navigation():
            register(page, name)
        assert "/agent/villagers/" in page.url and page.locator("h1").inner_text().startswith(name)
        assert villager_rows(database, name) == {name: 1}
        context.close()
