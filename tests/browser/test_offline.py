"""The village agent loses nothing when the connection drops (issue 11, item 7), in headless
Chromium on a 360×740 phone against the seeded server: the agent opens their pages online (the
service worker keeps them), goes offline (Playwright's context.set_offline), opens the pages again
from the worker's cache, registers two villagers and takes the cash for a proxy order (twice:
the second press must come back refused, with its message, not dropped), sees them waiting in the
header and the list, comes back online, and the queue replays itself. The server's database then
holds each exactly once; replaying the sent ones again (their answers lost) applies nothing.
Logging out empties the page cache. Without JavaScript the forms post as before.

The rest of the agent's day goes the same way offline: a proxy order placed for a villager (paid
in cash), a farmer's produce weighed and photographed at intake (a multipart form whose photo waits
on the phone), and a parcel handed over with its pickup code; each is applied exactly once.

The orders the agent works on are placed in the tests' set-up through the services, on the
server's own SQLite file. Screenshots: test-artifacts/browser/offline-*.png.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from domain import (
    AttemptStatus,
    HandoverMethod,
    Intake,
    IntakeLine,
    Node,
    Order,
    OrderStatus,
    ParcelHandover,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    Product,
    ProductStatus,
    Role,
    SubOrder,
    Unit,
    User,
    Villager,
    clock,
)
from marketplace.config import load_or_create_secret_key
from marketplace.db import make_engine
from services import authz, cash, ledger, parcels, proxy, villagers
from services.authz import Party
from services.orders import checkout, states
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pickup import PickupCodeKeys
from services.orders.pricing import CheckoutSettings
from services.payments.service import payment_of
from services.villagers import VillagerInput
from tests.factories import carry, jpeg, pickup_code_of, receive

pytestmark = pytest.mark.browser

# Playwright takes a service worker's own requests offline with the page (context.set_offline)
# only when it watches the workers' network; without this the worker's fetches (its network-first
# pages, Background Sync's replay) still reach the server while the page is "offline". Read when
# the Playwright driver starts (the session's `browser` fixture), after every module is imported.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")

DEMO_PASSWORD = "nongye-2026"
AGENT = "13800000021"  # 大黄村电商服务站 (梅县区)
VILLAGER_BUYER = "13800000062"  # a seeded buyer, the villager of record of the proxy order
FARMER = "13800000041"  # 钟家金柚园 in 大黄村: the agent's point is the farmer's home point
OTHER_AGENT = "13800000022"  # 坪湖村 (平远县)
MERCHANT = "13800000051"  # 佛山顺德农资百货商行: goods for the villages

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
def instance(server, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The server's instance folder (tests/browser/conftest.py `server` makes one)."""
    files = tmp_path_factory.getbasetemp().glob("instance*/marketplace.db")
    found = sorted({p.resolve().parent for p in files})
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def database(instance: Path) -> Iterator[Engine]:
    """The server's own SQLite file."""
    engine = make_engine(f"sqlite:///{instance / 'marketplace.db'}")
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


@dataclass(frozen=True)
class AgentWork:
    """What the agent has to do at the point, made through the services (see `agent_work`)."""

    agent_id: int
    villager_id: int  # a villager of the point, with a cart of goods for the village
    intake: str  # an accepted sub-order of the point's farmer, to receive
    weight: str  # its weight, as the agent types it (kg)
    parcel: str  # a parcel ready for pickup at the point
    code: str  # its pickup code, as the recipient read it in their SMS


def _cash_paid_sub_order(session: Session, agent: User, product: Product) -> SubOrder:
    """One of `product`, ordered by `agent` for a buyer to collect at their point and paid in cash
    there, accepted by its seller."""
    buyer = session.scalar(select(User).where(User.phone == VILLAGER_BUYER))
    assert buyer is not None
    placed = checkout.place_order(
        session,
        buyer,
        CheckoutInput(
            items={product.id: 1},
            idempotency_key=checkout.new_idempotency_key(),
            payment_method="cash",
            delivery="pickup",
            pickup_node_id=min(authz.node_ids(agent, Role.AGENT)),
            pickup_contact=AddressInput(recipient="钟伯", phone="13912340001"),
        ),
        OPEN_CAPS,
        placed_by=agent,
    )
    cash.take_cash(session, agent, placed.order.number, checkout.new_idempotency_key())
    (sub,) = placed.order.sub_orders
    states.apply(session, sub, OrderStatus.ACCEPTED, party=Party.SELLER, actor=product.seller)
    session.commit()
    return sub


def _seller_product(session: Session, phone: str) -> Product:
    product = session.scalars(
        select(Product)
        .join(User, User.id == Product.seller_id)
        .where(
            User.phone == phone,
            Product.status == ProductStatus.ACTIVE,
            Product.presale.is_(False),
            Product.unit != Unit.JIN,
            Product.stock - Product.reserved > 5,
        )
        .order_by(Product.id)
    ).first()
    assert product is not None, phone
    return product


@pytest.fixture()
def agent_work(database: Engine, instance: Path) -> AgentWork:
    # The server's own pickup code keys (PICKUP_CODE_SECRET, else its SECRET_KEY: marketplace/config).
    keys = PickupCodeKeys.from_settings(
        {
            "PICKUP_CODE_SECRET": os.environ.get("PICKUP_CODE_SECRET"),
            "SECRET_KEY": load_or_create_secret_key(instance),
        }
    )
    with Session(database) as session, clock.installed(clock.SystemClock()):
        agent = session.scalar(select(User).where(User.phone == AGENT))
        assert agent is not None
        point = session.get(Node, min(authz.node_ids(agent, Role.AGENT)))  # 大黄村
        assert point is not None
        villager = villagers.register_villager(
            session,
            agent,
            VillagerInput(name=f"离线丙{uuid.uuid4().hex[:4]}", village_code=point.division_code),
            idempotency_key=checkout.new_idempotency_key(),
        )
        goods = _seller_product(session, MERCHANT)
        proxy.shopping.set_item(session, agent, villager.id, goods.id, 2)

        # The point's farmer's pomelos, bought at another village's point: received at this one
        # (an agent never receives an order they placed).
        elsewhere = session.scalar(select(User).where(User.phone == OTHER_AGENT))
        assert elsewhere is not None
        to_receive = _cash_paid_sub_order(session, elsewhere, _seller_product(session, FARMER))
        # Goods for the village the agent ordered for a buyer, received at the merchant's county
        # center, scanned along the network and arrived at the point.
        parcel = _cash_paid_sub_order(session, agent, goods)
        receive(session, None, parcel)  # type: ignore[arg-type]  (paid in cash: no gateway call)
        carry(session, parcel, to_the_end=False)  # scanned along its legs, on its way to the point
        parcels.mark_arrived(session, agent, parcel.number, checkout.new_idempotency_key())
        code = pickup_code_of(session, parcel.order, keys)
        (line,) = to_receive.lines
        return AgentWork(
            agent_id=agent.id,
            villager_id=villager.id,
            intake=to_receive.number,
            weight=f"{line.net_weight_g * line.quantity / 1000:g}",
            parcel=parcel.number,
            code=code,
        )


def agent_work_state(database: Engine, work: AgentWork) -> tuple[list[PaymentStatus], int, list[str]]:
    """The villager's proxy orders (their payments' states), the intake's photographed lines (None:
    no intake), and the parcel's hand-overs (their methods)."""
    with Session(database) as session:
        orders = session.scalars(select(Order).where(Order.villager_id == work.villager_id)).all()
        paid = [payment_of(session, o).status for o in orders]
        intake = session.scalar(
            select(Intake)
            .join(SubOrder, SubOrder.id == Intake.sub_order_id)
            .where(SubOrder.number == work.intake)
        )
        photographed = (
            -1
            if intake is None
            else int(
                session.scalar(
                    select(func.count()).where(
                        IntakeLine.intake_id == intake.id, IntakeLine.photo_id.is_not(None)
                    )
                )
                or 0
            )
        )
        handovers = session.scalars(
            select(ParcelHandover.method)
            .join(SubOrder, SubOrder.id == ParcelHandover.sub_order_id)
            .where(SubOrder.number == work.parcel)
        ).all()
        return paid, photographed, [str(m) for m in handovers]


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

    def test_a_proxy_order_an_intake_and_a_handover_recorded_offline_apply_once(
        self, browser, server, database, agent_work, shot
    ):
        work = agent_work
        shop = f"/agent/proxy/villagers/{work.villager_id}"
        receive_page = f"/agent/intake/{work.intake}"
        handover = f"/agent/parcels/{work.parcel}"
        context = phone_context(browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))

        log_in(page, server)
        page.goto(server + shop)
        under_the_worker(page)
        for path in (shop, receive_page, handover):
            page.goto(server + path)
            page.wait_for_load_state()
        state_before = agent_work_state(database, work)
        assert state_before == ([], -1, [])

        context.set_offline(True)
        # A proxy order for the villager, paid in cash now.
        page.goto(server + shop)
        order_form = page.locator("form[data-offline]")
        order_form.locator("input[name=payment_method][value=cash]").check()
        order_form.locator("button[type=submit]").click()
        wait_for(page, f"({QUEUE_STATES}).length === 1")
        # The farmer's produce weighed, graded and photographed: a multipart form, its photo kept
        # on the phone as a file.
        page.goto(server + receive_page)
        intake_form = page.locator("form[data-offline]")
        intake_form.locator("input[name^='weight-']").fill(work.weight)
        intake_form.locator("input[type=file]").set_input_files(
            {"name": "pomelo.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}
        )
        intake_form.locator("button[type=submit]").click()
        wait_for(page, f"({QUEUE_STATES}).length === 2")
        # The parcel handed over with the code the recipient reads out.
        page.goto(server + handover)
        assert page.locator("form[data-offline]").count() == 1, page.locator("main").inner_text()
        handover_form = page.locator("form[data-offline]")
        handover_form.locator("input[name=pickup_code]").fill(work.code)
        handover_form.locator("button[type=submit]").click()
        wait_for(page, f"({QUEUE_STATES}).length === 3")
        labels = page.locator("#offline-queue li .title").all_inner_texts()
        assert labels[0].startswith("代购"), labels
        assert labels[1].endswith(work.intake) and labels[2].endswith(work.parcel), labels
        shot(page, "offline-3-agent-work-waiting")
        assert agent_work_state(database, work) == state_before  # nothing reached the server

        context.set_offline(False)
        wait_for(page, f"({QUEUE_STATES}).filter(s => s !== 'waiting').length === 3", timeout=30)
        assert page.evaluate(QUEUE_STATES) == ["sent"] * 3, queue_text(page)
        # "Kept on this phone" gives way to "sent", whoever sent them (the page or the worker).
        status = "document.querySelector('#offline-queue [role=status]').textContent"
        wait_for(page, f"{status} === '等待的记录已发送完毕。'")
        shot(page, "offline-4-agent-work-sent")
        done = ([PaymentStatus.SUCCEEDED], 1, [str(HandoverMethod.CODE)])
        assert agent_work_state(database, work) == done

        # Their answers lost: sent again with the same keys, nothing applied twice.
        page.evaluate(
            """async () => {
                for (const item of await ynOffline.all()) {
                    if (item.state === 'sent') { item.state = 'waiting'; await ynOffline.put(item); }
                }
                return ynOffline.replay();
            }"""
        )
        page.reload()
        wait_for(page, f"({QUEUE_STATES}).filter(s => s !== 'waiting').length === 3")
        assert page.evaluate(QUEUE_STATES) == ["sent"] * 3, queue_text(page)
        tries = "ynOffline.all().then(items => items.filter(i => i.user === %d).map(i => i.tries))"
        assert page.evaluate(tries % work.agent_id)[-3:] == [2, 2, 2]
        assert agent_work_state(database, work) == done
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
