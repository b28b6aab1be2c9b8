"""The demo's order history (seed/history.py): orders in every state, placed, paid, moved and
refunded through the services over the weeks before the seed runs, a paid payout batch, books
that balance, work for every demo login; the demo village agent's point (seed/agents.py):
villagers, proxy orders in cash and on credit, parcels to hand out, a standing order, the county's
rates and the agent's credit; a second run changes nothing. And the gateway the seed pays through
(seed/gateway.py) leaves its state where `make run`'s localstripe finds it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain import (
    Address,
    AgentCommission,
    AgentCreditLimit,
    AuditEvent,
    CommissionKind,
    CommissionRate,
    CreditCollection,
    Division,
    DivisionLevel,
    GatewayCustomer,
    Intake,
    LedgerEntry,
    LedgerTransaction,
    Order,
    OrderEvent,
    OrderStatus,
    ParcelHandover,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Payout,
    PayoutBatch,
    PayoutBatchStatus,
    Product,
    ProxyCartItem,
    Refund,
    RefundStatus,
    Role,
    SellerProfile,
    SmsMessage,
    StandingCycle,
    StandingOrder,
    SubOrder,
    Villager,
    clock,
)
from marketplace.config import PROJECT_ROOT, TestingConfig
from marketplace.db import make_engine
from seed import agents, history
from seed.gateway import demo_gateway
from seed.loader import read_json
from services import (
    accounts,
    cash,
    commissions,
    dashboard,
    ledger,
    ledger_checks,
    notify,
    parcels,
    places,
    proxy,
    standing,
    villagers,
    workspace,
)
from services.orders import manage
from services.payments.gateway import InvalidPaymentRequest
from tests.conftest import NOW, SEED_DATA, migrate

S = OrderStatus
SELLER_ROLES = (Role.FARMER, Role.MERCHANT)
STAFF_ROLES = (Role.ADMIN, Role.COUNTY_STAFF, Role.DC_STAFF, Role.AGENT)


def _demo_seed(session: Session, app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The whole demo seed (catalog and history) as `flask seed` runs it, paying through this
    run's localstripe (the app's gateway)."""
    from marketplace.gateways import checkout_settings, payment_gateway, pickup_code_keys

    with app.app_context():
        return history.load_demo(
            session,
            gateway=payment_gateway(),
            settings=checkout_settings(),
            pickup_keys=pickup_code_keys(),
            wallet_url=app.config["STRIPE_API_BASE"],
            channel=notify.SmsOutboxChannel(),
        )


@pytest.fixture(scope="module")
def demo_engine(new_database, _app) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """A database of its own, seeded once for the module (the seed commits, as `flask seed`
    does), on the product's clock standing at the suite's NOW as every test's does."""
    url = new_database("seed_orders")
    migrate(url)
    engine = make_engine(url)
    with clock.installed(clock.TickingClock(NOW)), Session(engine, expire_on_commit=False) as session:
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
        assert history.gateway_unused(session)
        report = _demo_seed(session, _app)
    engine.report = report  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture()
def demo(demo_engine: Engine) -> Iterator[Session]:
    """A session on the seeded database whose commits are rolled back after the test."""
    connection = demo_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()
    outer.rollback()
    connection.close()


def seeded_orders(session) -> list[Order]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(Order).where(Order.idempotency_key.like(history.ORDER_KEY_PREFIX + "%")).order_by(Order.id)
        )
    )


def demo_user(session, phone: str):  # type: ignore[no-untyped-def]
    return accounts.find_user_by_phone(session, phone)


def money_state(session) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """How many of each thing the history writes, and every sub-order's state and money."""
    session.expire_all()
    counts = {
        model.__name__: session.scalar(select(func.count()).select_from(model))
        for model in (
            Order,
            SubOrder,
            OrderEvent,
            Payment,
            Refund,
            LedgerTransaction,
            LedgerEntry,
            PayoutBatch,
            Payout,
            Address,
            GatewayCustomer,
            SmsMessage,
            # the demo agent's point (seed/agents.py)
            Villager,
            CommissionRate,
            AgentCreditLimit,
            AgentCommission,
            CreditCollection,
            ParcelHandover,
            Intake,
            StandingOrder,
            StandingCycle,
            ProxyCartItem,
            AuditEvent,
        )
    }
    subs = session.execute(
        select(SubOrder.number, SubOrder.status, SubOrder.refunded_fen, SubOrder.payout_id).order_by(
            SubOrder.number
        )
    ).all()
    point = {
        "rates": session.execute(
            select(
                CommissionRate.county_code,
                CommissionRate.kind,
                CommissionRate.category_id,
                CommissionRate.rate_bp,
                CommissionRate.updated_at,
            ).order_by(CommissionRate.id)
        ).all(),
        "limits": session.execute(
            select(AgentCreditLimit.agent_id, AgentCreditLimit.limit_fen, AgentCreditLimit.updated_at)
        ).all(),
        "villagers": session.execute(
            select(Villager.name, Villager.phone, Villager.notes, Villager.updated_at).order_by(Villager.id)
        ).all(),
        "standing": session.execute(
            select(StandingOrder.id, StandingOrder.status, StandingOrder.weekday, StandingOrder.updated_at)
        ).all(),
    }
    return {**counts, **point, "sub_orders": subs, "balances": ledger.balances(session)}


class TestTheDemoHistory:
    def test_orders_in_every_state_with_real_money(self, demo, demo_engine, gateway):
        session, report = demo, demo_engine.report
        entries = history.read_history()["orders"]
        assert report["orders"] == len(entries) and report["payout_batches"] == 1
        orders = seeded_orders(session)
        assert len(orders) == len(entries)
        subs = [sub for order in orders for sub in order.sub_orders]
        statuses = Counter(sub.status for sub in subs)
        wanted = {
            S.PAID,
            S.ACCEPTED,
            S.HANDED_IN,
            S.IN_TRANSIT,
            S.READY_FOR_PICKUP,
            S.OUT_FOR_DELIVERY,
            S.COMPLETED,
            S.REFUNDED,
        }
        assert wanted <= set(statuses), statuses
        assert set(statuses) <= wanted  # nothing left unpaid, cancelled or waiting for a decision

        # Partly refunded is money, not a state: completed with part of its money back, one of
        # them (short at packing) paid out its remainder, one (after-sale) still owed.
        partial = [s for s in subs if s.status == S.COMPLETED and 0 < s.refunded_fen < s.total_fen]
        assert {s.payout_id is not None for s in partial} == {True, False}
        refunded = [s for s in subs if s.status == S.REFUNDED]
        assert refunded and all(s.refunded_fen == s.total_fen for s in refunded)
        assert any(s.decline_reason for s in refunded)  # a seller declined one
        refunds = session.scalars(select(Refund)).all()
        assert refunds and {r.status for r in refunds} == {RefundStatus.SUCCEEDED}

        # Both ways of paying and of receiving, every one paid at the gateway.
        assert {o.payment_method.value for o in orders} == {"card", "wechat_pay"}
        assert {o.delivery_method.value for o in orders} == {"home", "pickup"}
        for order in orders:
            assert order.payment.status == PaymentStatus.SUCCEEDED
            intent = gateway.retrieve_payment_intent(order.payment.intent_id)
            assert intent.status == "succeeded" and intent.amount_received == order.total_fen

        # A payout batch paid by the bank, holding exactly the sub-orders completed before its
        # cutoff; every other completed sub-order is still owed.
        (batch,) = session.scalars(select(PayoutBatch)).all()
        assert batch.status == PayoutBatchStatus.PAID and batch.total_fen > 0
        paid_out = [s for s in subs if s.payout_id is not None]
        assert paid_out and all(s.status == S.COMPLETED and s.completed_at <= batch.cutoff for s in paid_out)
        assert all(s.completed_at > batch.cutoff for s in subs if s.status == S.COMPLETED and not s.payout_id)

        # The books: balanced, every invariant holds, and every seller with money not yet paid
        # out is owed it.
        assert ledger.trial_balance(session) == 0
        assert [str(b) for b in ledger_checks.find_breaches(session)] == []
        # A refund after the payout: the seller's share is carried (the finance page shows it),
        # to be netted from their next payout.
        carried = ledger.carried_balances(session)
        late = {r.sub_order.seller_id for r in refunds if batch.paid_at and r.created_at > batch.paid_at}
        assert carried and set(carried) == late and all(v > 0 for v in carried.values())
        every_sub = session.scalars(select(SubOrder)).all()  # the agent's proxy orders' too
        for seller_id in {s.seller_id for s in subs}:
            unpaid = [
                s
                for s in every_sub
                if s.seller_id == seller_id and s.payout_id is None and s.refunded_fen < s.total_fen
            ]
            owed = ledger.seller_payable(session, seller_id)
            assert owed >= 0
            assert (owed > 0) == bool(unpaid), seller_id
        assert (
            ledger.balance(session, ledger.CLEARING)
            == sum(o.total_fen for o in orders) - sum(r.amount_fen for r in refunds) - batch.total_fen
        )

    def test_a_history_over_the_past_weeks_on_the_products_clock(self, demo):
        session = demo
        orders = seeded_orders(session)
        placed = [o.created_at for o in orders]
        assert min(placed) < NOW - timedelta(days=20) and max(placed) < NOW
        events = session.scalars(select(OrderEvent)).all()
        assert events and all(e.created_at < NOW for e in events)
        # Each sub-order's history runs forward: placed, paid, then its moves, one after another.
        for order in orders:
            for sub in order.sub_orders:
                times = [e.created_at for e in sorted(sub.events, key=lambda e: e.id)]
                assert times == sorted(times) and times[0] == order.created_at
        # The shops, their products and the buyers were there before the first order.
        assert session.scalar(select(func.max(SellerProfile.created_at))) < min(placed)
        assert session.scalar(select(func.max(Product.created_at))) < min(placed)
        buyer = demo_user(session, "13800000061")
        assert buyer.created_at < min(placed)
        # The messages the moves told the buyers went out at their moments, not all at once now.
        sent = session.scalars(select(SmsMessage.created_at)).all()
        assert len(sent) > len(orders) and min(sent) < NOW - timedelta(days=20)

    def test_every_demo_login_finds_work_in_each_of_its_workspaces(self, demo):
        session = demo
        for entry in read_json("demo_users.json"):
            user = demo_user(session, entry["phone"])
            spaces = workspace.workspaces_for(user)
            assert spaces, entry["phone"]
            for space in spaces:
                if space.role == Role.BUYER:
                    found = manage.buyer_orders(session, user)
                elif space.role in SELLER_ROLES:
                    found = manage.seller_sub_orders(session, user)
                else:
                    assert space.role in STAFF_ROLES
                    found = manage.staff_sub_orders(session, user)
                assert found, (entry["phone"], space.role)
        # The admins' finance page: the sellers' balances and the paid batch.
        admin = demo_user(session, "13800000001")
        overview = ledger.finance_overview(session, admin)
        assert overview.trial_balance_fen == 0 and overview.batches
        payables = [a for a in overview.accounts if a.family == "seller_payable"]
        assert payables and any(a.balance_fen < 0 for a in payables)  # credit: owed to the seller

    def test_a_second_run_adds_nothing_and_changes_nothing(self, demo, _app, clock):
        session = demo
        assert not history.gateway_unused(session)  # the state file is loaded, never wiped
        before = money_state(session)
        clock.advance(hours=5)  # a later `make run`: the same history, nothing new
        again = _demo_seed(session, _app)
        assert set(again.values()) == {0}
        assert money_state(session) == before
        assert clock.now() == NOW + timedelta(hours=5)  # the product's clock is put back

    def test_a_new_database_refers_to_nothing_at_the_gateway(self, session):
        assert history.gateway_unused(session)


class TestTheDemoAgent:
    """The demo agent of 大黄村电商服务站 (seed/agents.py) finds a day's work on /agent."""

    def test_the_agents_day_shows_parcels_cash_credit_and_commission(self, demo, demo_engine):
        session, report = demo, demo_engine.report
        data = agents.read_agents()
        assert report["villagers"] == len(data["villagers"])
        assert report["proxy_orders"] == len(data["proxy_orders"])
        assert report["standing_orders"] == len(data["standing_orders"])
        assert report["commission_rates"] == len(data["commission_rates"]) and report["credit_limits"] == 1
        agent = demo_user(session, data["agent"])
        orders = {
            o.idempotency_key: o
            for o in session.scalars(select(Order).where(Order.placed_by_id == agent.id))
            if o.idempotency_key.startswith(agents.KEY_PREFIX)
        }
        assert set(orders) == {agents.order_key(e) for e in data["proxy_orders"]}
        in_cash = [o for o in orders.values() if o.payment_method == PaymentMethod.CASH]
        on_credit = [o for o in orders.values() if o.payment_method == PaymentMethod.CREDIT]
        assert in_cash and on_credit
        assert all(o.villager_id is not None and o.pickup_node_id is not None for o in orders.values())

        day = dashboard.agent_day(session, agent)
        mine = [s for o in orders.values() for s in o.sub_orders]
        ready = [s for s in mine if s.status == S.READY_FOR_PICKUP]
        assert {o.payment_method for o in (s.order for s in ready)} == {
            PaymentMethod.CASH,
            PaymentMethod.CREDIT,
        }
        assert day.to_hand_out >= len(ready) >= 2 and day.overdue == 0
        assert day.arriving >= 1  # one on its way to the point
        waiting = {p.number for p in parcels.waiting(session, agent)}
        assert {s.number for s in ready} <= waiting
        # Cash taken for the cash orders and still held (none remitted); the credit orders owed.
        assert day.cash_held_fen == cash.cash_held(session, agent.id) == sum(o.total_fen for o in in_cash) > 0
        assert day.credit_used_fen == sum(o.total_fen for o in on_credit) > 0
        assert day.credit_limit_fen == data["credit_limit_fen"] > day.credit_used_fen
        assert day.on_credit == len(on_credit) and day.awaiting_payment == 0
        assert {o.payment.status for o in on_credit} == {PaymentStatus.ON_CREDIT}
        # One parcel handed over with its pickup code: the agent's commission on it, this month.
        (handover,) = session.scalars(
            select(ParcelHandover).where(ParcelHandover.sub_order_id.in_([s.id for s in mine]))
        ).all()
        assert handover.handed_by_id == agent.id and handover.sub_order.status == S.COMPLETED
        earned = session.scalars(select(AgentCommission).where(AgentCommission.agent_id == agent.id)).all()
        assert [c.kind for c in earned] == [CommissionKind.PROXY]
        assert day.commission_month_fen == earned[0].amount_fen > 0
        assert [str(b) for b in ledger_checks.find_breaches(session)] == []

    def test_villagers_with_consent_and_a_standing_order(self, demo):
        session = demo
        data = agents.read_agents()
        agent = demo_user(session, data["agent"])
        found = villagers.list_villagers(session, agent)
        assert len(found) == len(data["villagers"]) >= 4
        assert all(v.consent_agent_id == agent.id and v.consented_at < NOW for v in found)
        assert any(v.phone == "" for v in found)  # one without a phone
        phones = Counter(v.phone for v in found if v.phone)
        assert 2 in phones.values()  # two share the family's phone
        assert any("送到女儿家" in v.notes for v in found)
        # Every one in a village of the point's town (a real division).
        (point,) = dashboard.agent_day(session, agent).points
        assert all(v.village_code[:9] == point.division_code[:9] and v.village is not None for v in found)

        (weekly,) = standing.list_standing(session, agent)
        assert weekly.villager.point_id == point.id and weekly.lines
        assert standing.next_due_dates(weekly, count=1) == [clock.today() + timedelta(days=2)]

    def test_the_county_staff_set_the_rates_and_the_credit(self, demo):
        session = demo
        data = agents.read_agents()
        agent, staff = demo_user(session, data["agent"]), demo_user(session, data["county_staff"])
        (point,) = dashboard.agent_day(session, agent).points
        rates = commissions.county_rates(session, staff, point.county_code)
        kinds = {row.kind for row in rates.rows if row.rate_bp is not None}
        assert kinds == {CommissionKind.PROXY, CommissionKind.INTAKE}
        assert sum(row.rate_bp is not None and row.category is not None for row in rates.rows) >= 3
        set_by = session.scalars(
            select(CommissionRate.set_by_id).where(CommissionRate.county_code == point.county_code)
        )
        assert set(set_by) == {staff.id}
        credit = proxy.agent_credit(session, staff, agent.id)
        assert credit.limit_fen == data["credit_limit_fen"] and credit.used_fen > 0
        assert session.get(AgentCreditLimit, agent.id).set_by_id == staff.id
        # Set before the first proxy order and after the history's parcels the agent received
        # completed: no commission the rates would have earned is missing.
        rates_set = min(session.scalars(select(CommissionRate.updated_at)))
        first_placed = min(session.scalars(select(Order.created_at).where(Order.placed_by_id == agent.id)))
        assert rates_set < first_placed
        received = select(Intake.sub_order_id).where(Intake.received_by_id == agent.id)
        completed_since = session.scalars(
            select(SubOrder.id).where(SubOrder.id.in_(received), SubOrder.completed_at > rates_set)
        ).all()
        earned = session.scalars(
            select(AgentCommission.sub_order_id).where(AgentCommission.agent_id == agent.id)
        )
        assert set(completed_since) <= set(earned)

    def test_everything_on_the_products_clock_in_the_recent_past(self, demo):
        session = demo
        data = agents.read_agents()
        agent = demo_user(session, data["agent"])
        placed = session.scalars(select(Order.id).where(Order.placed_by_id == agent.id))
        events = session.scalars(
            select(OrderEvent.created_at).join(SubOrder).where(SubOrder.order_id.in_(placed))
        )
        times = list(events)
        assert times and all(NOW - timedelta(days=5) < t < NOW for t in times)
        for model in (Villager, StandingOrder):
            assert all(t < NOW for t in session.scalars(select(model.created_at)))

    def test_the_cold_chain_has_a_day_of_readings_and_one_short_excursion(self, demo):
        from domain import Excursion, ExcursionLot, Notification, NotificationEvent, TemperatureReading

        session = demo
        assert session.scalar(select(func.count()).select_from(TemperatureReading)) == 2 * 144
        (excursion,) = session.scalars(select(Excursion))
        assert excursion.logger.serial == "MX-VAN-01" and excursion.minutes == 50
        assert 60 < excursion.worst_tenths < 80
        # A demo parcel left 梅县's center in the van during the excursion, but room-temperature
        # pomelos are not spoilt by 7 ℃: an excursion marks only the chilled lots aboard.
        assert session.scalar(select(func.count()).select_from(ExcursionLot)) == 0
        alerts = session.scalars(
            select(Notification).where(Notification.event == NotificationEvent.COLD_EXCURSION)
        )
        assert {a.status.value for a in alerts} == {"sent"}


class TestTheAgentData:
    def test_the_villages_are_real_villages_of_the_points_town(self, session):
        data = agents.read_agents()
        kind, code = data["point"]
        assert kind == "village_point"
        assert code in {p["village_code"] for p in read_json("village_points.json")}
        for entry in data["villagers"]:
            village = session.get(Division, entry["village_code"])
            assert village is not None and village.level == DivisionLevel.VILLAGE
            assert village.code[:9] == code[:9]

    def test_the_orders_are_last_kilometer_goods_with_their_steps_in_order(self):
        data = agents.read_agents()
        flows = {c["slug"]: c["flow"] for c in read_json("categories.json")}
        category = {p["key"]: p["category"] for p in read_json("products.json")}
        keys = [*data["proxy_orders"], *data["standing_orders"]]
        assert all(flows[category[key]] == "goods" for entry in keys for key, _qty in entry["items"])
        for entry in data["proxy_orders"]:
            steps = agents.check_steps(entry)
            assert steps[0][0] == "place"
        with pytest.raises(ValueError):
            agents.check_steps({"key": "x", "steps": {"place": 5, "arrive": 3}})
        with pytest.raises(ValueError):
            agents.check_steps({"key": "x", "steps": {"place": 5, "accept": 6}})


class TestTheHistoryData:
    def test_the_plan_is_the_same_every_run_and_ends_before_now(self):
        first, second = history.plan(NOW), history.plan(NOW)
        assert first == second
        for planned in first:
            times = [planned.placed, *(when for _name, when in planned.steps)]
            assert times == sorted(times) and times[-1] <= NOW - history.LATEST
        sellers = {p["key"]: p["seller"] for p in read_json("products.json")}
        drawn = {sellers[key] for planned in first for key, _qty in planned.items}
        assert drawn == {s["phone"] for s in read_json("sellers.json")}  # every shop has orders

    def test_addresses_and_pickup_points_are_real_places(self, session):
        data = history.read_history()
        for buyer in data["buyers"]:
            division = session.get(Division, buyer["division_code"])
            assert division is not None and division.level in (DivisionLevel.TOWN, DivisionLevel.VILLAGE)
        node_codes = {
            "village_point": {p["village_code"] for p in read_json("village_points.json")},
            "distribution_center": {p["county_code"] for p in read_json("distribution_centers.json")},
        }
        pickups = {tuple(o["pickup"]) for o in data["orders"] if o.get("pickup")}
        assert pickups and all(code in node_codes[kind] for kind, code in pickups)
        # Each distribution center gets pickups, so its staff has work.
        assert {code for kind, code in pickups if kind == "distribution_center"} == node_codes[
            "distribution_center"
        ]


# --- the gateway the seed pays through -------------------------------------------------------------


def _config(tmp_path: Path, api_base: str) -> dict[str, object]:
    config = vars(TestingConfig())
    config.update(INSTANCE_PATH=str(tmp_path), STRIPE_API_BASE=api_base)
    return config


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_run_localstripe(state_file: Path, port: int) -> subprocess.Popen[bytes]:
    """localstripe as `make run` starts it: on the instance's state file, loading it."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.localstripe",
            "--port",
            str(port),
            "--state-file",
            str(state_file),
            "--quiet",
            "--idempotency",
            "--exit-with-parent",
        ],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("localstripe did not start")


def _paid_intent(gateway) -> str:  # type: ignore[no-untyped-def]
    customer = gateway.create_customer(name="seed", phone="13800000061", metadata={}, idempotency_key="c-1")
    intent = gateway.create_payment_intent(
        amount=5980,
        currency="cny",
        payment_method_types=["card"],
        capture_method="automatic",
        customer=customer,
        metadata={},
        idempotency_key="pi-1",
    )
    paid = gateway.confirm_payment_intent(intent.id, payment_method="pm_card_visa", idempotency_key="pi-1-c")
    assert paid.status == "succeeded"
    return str(intent.id)


class TestTheSeedsGateway:
    def test_what_the_seed_paid_is_known_to_make_runs_localstripe_after(self, tmp_path):
        config = _config(tmp_path, f"http://127.0.0.1:{_free_port()}")
        with demo_gateway(config, fresh=True) as found:
            assert found is not None and found.started
            intent_id = _paid_intent(found.gateway)
        assert not history_gateway_answers(found.url)  # stopped with the seed

        from marketplace.gateways import build_payment_gateway

        port = _free_port()
        server = _make_run_localstripe(tmp_path / "localstripe.pickle", port)
        try:
            served = build_payment_gateway({**config, "STRIPE_API_BASE": f"http://127.0.0.1:{port}"})
            assert served.retrieve_payment_intent(intent_id).status == "succeeded"
            refund = served.create_refund(
                payment_intent=intent_id, amount=1000, idempotency_key="r-1", metadata={}
            )
            assert refund.status == "succeeded"
        finally:
            server.terminate()
            server.wait(timeout=10)

    def test_the_state_starts_afresh_only_for_a_database_that_refers_to_nothing(self, tmp_path):
        config = _config(tmp_path, f"http://127.0.0.1:{_free_port()}")
        with demo_gateway(config, fresh=True) as found:
            assert found is not None
            kept = _paid_intent(found.gateway)
        with demo_gateway(config, fresh=False) as found:
            assert found is not None
            assert found.gateway.retrieve_payment_intent(kept).status == "succeeded"
        with demo_gateway(config, fresh=True) as found:
            assert found is not None
            with pytest.raises(InvalidPaymentRequest) as lost:
                found.gateway.retrieve_payment_intent(kept)
            assert lost.value.http_status == 404

    def test_a_localstripe_already_serving_is_used_and_stripe_itself_never(self, tmp_path, localstripe):
        with demo_gateway(_config(tmp_path, localstripe.url), fresh=True) as found:
            assert found is not None and not found.started and found.url == localstripe.url
        assert not (tmp_path / "localstripe.pickle").exists()
        with demo_gateway(_config(tmp_path, "https://api.stripe.com"), fresh=True) as found:
            assert found is None


def history_gateway_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/js.stripe.com/v3/", timeout=1).ok
    except requests.RequestException:
        return False
