"""Proxy orders (代购, issue 11 item 3): an agent shops for a villager of their point and places
the order for pickup there, paid by the villager's QR (the buyers' PaymentIntent path, against
the real localstripe), in cash now, or on the agent's credit with the cash taken at pickup. The
ledger's postings (cash_held, agent_credit), the credit used and freed, refunds through the agent
(no gateway), the SMS to the villager, idempotency and bad input. Ledger invariants are checked
after each test (tests/conftest.py LEDGER_CHECKED)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from domain import (
    AgentCreditLimit,
    CreditCollection,
    LedgerTransaction,
    Notification,
    NotificationEvent,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    ReservationStatus,
    Role,
    StockReservation,
)
from services import cash, ledger, ledger_checks, proxy, villagers
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.orders import checkout, manage
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.villagers import VillagerInput
from tests.conftest import YINGDE, count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
FERTILIZER = "复合肥"  # a merchant's farm input: the last-kilometer catalog


class NoGateway:
    """A gateway that must not be called: cash and credit refunds never go to it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the gateway was called: {name}")


def register(session, agent, point, name="陈阿婆", phone="13912340000", key=None):  # type: ignore[no-untyped-def]
    return villagers.register_villager(
        session,
        agent,
        VillagerInput(name=name, village_code=point.division_code, phone=phone),
        idempotency_key=key or f"villager-{name}-{phone or 'none'}",
    )


@pytest.fixture()
def villager(session, agent, point):  # type: ignore[no-untyped-def]
    return register(session, agent, point)


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def fill(session, market, agent, villager, **items: int):  # type: ignore[no-untyped-def]
    wanted = {market.product(name).id: qty for name, qty in (items or {FERTILIZER: 1}).items()}
    return proxy.save_cart(session, agent, villager.id, wanted)


def place(session, market, agent, villager, method, key, gateway=None, **items: int):  # type: ignore[no-untyped-def]
    fill(session, market, agent, villager, **items)
    return proxy.place(session, gateway, agent, villager.id, method, key, SETTINGS).order


def messages(session, order, event):  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(Notification).where(Notification.order_id == order.id, Notification.event == event)
        )
    )


def credit(session, agent) -> int:  # type: ignore[no-untyped-def]
    return ledger.balance(session, ledger.agent_credit_code(agent.id))


def held(session, agent) -> int:  # type: ignore[no-untyped-def]
    return ledger.balance(session, ledger.cash_held_code(agent.id))


def breaches(session) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(b) for b in ledger_checks.find_breaches(session)]


class TestShoppingForAVillager:
    def test_the_cart_is_kept_per_agent_and_villager_and_set_absolutely(
        self, session, market, agent, villager, point
    ):
        other = register(session, agent, point, name="李伯", phone="")
        fertilizer = market.product(FERTILIZER).id
        proxy.set_item(session, agent, villager.id, fertilizer, 2)
        proxy.set_item(session, agent, villager.id, fertilizer, 2)  # a repeat changes nothing
        assert proxy.cart_items(session, agent, villager.id) == {fertilizer: 2}
        assert proxy.cart_items(session, agent, other.id) == {}
        quote = proxy.quote(session, proxy.cart_items(session, agent, villager.id), SETTINGS)
        assert quote.total_fen >= 2 * 16500
        proxy.set_item(session, agent, villager.id, fertilizer, 0)
        assert proxy.cart_items(session, agent, villager.id) == {}
        with pytest.raises(ValidationError):
            proxy.set_item(session, agent, villager.id, fertilizer, 1000)

    def test_the_catalog_is_the_last_kilometer_goods(self, session, market, agent):
        names = {card.name for card in proxy.search_goods(session, agent).items}
        assert FERTILIZER in names
        assert "梅县蜜柚" not in names  # farm produce goes to the city, not to the village shop

    def test_another_points_villager_is_refused_and_nothing_written(
        self, session, market, agent, make_user, village_point
    ):
        elsewhere = village_point(YINGDE)
        their_agent = make_user(Role.AGENT, node_id=elsewhere.id)
        theirs = register(session, their_agent, elsewhere, name="黄婆婆")
        with pytest.raises(Forbidden) as caught:
            proxy.set_item(session, agent, theirs.id, market.product(FERTILIZER).id, 1)
        assert "另一个服务点" in str(caught.value.message) or "another service point" in str(
            caught.value.message
        )
        with pytest.raises(Forbidden):
            proxy.place(
                session,
                None,
                agent,
                theirs.id,
                "cash",
                "another-point-key",
                SETTINGS,
                items={market.product(FERTILIZER).id: 1},
            )
        with pytest.raises(Forbidden):  # a buyer is no agent
            proxy.cart_items(session, market.buyer, theirs.id)
        with pytest.raises(NotFound):
            proxy.cart_items(session, agent, 2**30)
        assert count(session, Order) == 0


class TestPaidByTheVillagersQr:
    def test_a_wechat_qr_on_the_agents_screen_is_paid_once(
        self, session, market, agent, villager, gateway, localstripe
    ):
        order = place(session, market, agent, villager, "wechat_pay", "proxy-qr-key-001", gateway)
        assert (order.villager_id, order.placed_by_id, order.buyer_id) == (villager.id, agent.id, agent.id)
        assert (order.recipient, order.recipient_phone) == ("陈阿婆", "13912340000")
        assert order.pickup_node_id == villager.point_id
        assert proxy.cart_items(session, agent, villager.id) == {}  # what was ordered left the cart
        followed, error = proxy.follow(session, gateway, agent, order.number)
        assert error is None and followed.state == "wechat" and followed.qr_text
        assert set(followed.choices) == {PaymentMethod.ALIPAY}

        again = proxy.place(
            session,
            gateway,
            agent,
            villager.id,
            "wechat_pay",
            "proxy-qr-key-001",
            SETTINGS,
            items={market.product(FERTILIZER).id: 1},
        )
        assert again.order.id == order.id and not again.created
        assert count(session, Order) == 1

        localstripe.wallet_paid(order.payment.intent_id)
        followed, _error = proxy.follow(session, gateway, agent, order.number)
        assert followed.state == "paid"
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        # The villager hears about it on their phone, not the agent's.
        for event in (NotificationEvent.PROXY_PLACED, NotificationEvent.PAID):
            assert [m.phone for m in messages(session, order, event)] == ["13912340000"]
        assert [o.id for o in proxy.placed_orders(session, agent, status="paid")] == [order.id]
        assert proxy.placed_orders(session, agent, status="unpaid") == []

    def test_a_failed_qr_is_retried_with_the_other_wallet_on_the_same_order(
        self, session, market, agent, villager, gateway, localstripe
    ):
        order = place(session, market, agent, villager, "wechat_pay", "proxy-qr-key-002", gateway)
        localstripe.wallet_failed(order.payment.intent_id)
        followed, _error = proxy.follow(session, gateway, agent, order.number)
        assert followed.state == "wallet_retry"
        proxy.switch_payment(session, gateway, agent, order.number, "alipay", "proxy-switch-key-01")
        proxy.switch_payment(session, gateway, agent, order.number, "alipay", "proxy-switch-key-01")
        assert proxy.follow(session, gateway, agent, order.number)[0].state == "alipay"
        localstripe.wallet_paid(order.payment.intent_id)
        assert proxy.follow(session, gateway, agent, order.number)[0].state == "paid"
        assert order.payment_method == PaymentMethod.ALIPAY
        with pytest.raises(ValidationError):
            proxy.switch_payment(session, gateway, agent, order.number, "cash", "proxy-switch-key-02")

    def test_only_the_placer_and_the_points_agent_follow_it(
        self, session, market, agent, villager, gateway, make_user, point, village_point
    ):
        order = place(session, market, agent, villager, "wechat_pay", "proxy-qr-key-003", gateway)
        colleague = make_user(Role.AGENT, node_id=point.id)
        assert proxy.proxy_order(session, colleague, order.number).id == order.id
        stranger = make_user(Role.AGENT, node_id=village_point(YINGDE).id)
        with pytest.raises(NotFound):
            proxy.proxy_order(session, stranger, order.number)
        with pytest.raises(NotFound):
            proxy.proxy_order(session, market.buyer, order.number)

    def test_an_unpaid_proxy_order_is_cancelled_and_its_stock_goes_back(
        self, session, market, agent, villager, gateway
    ):
        product = market.product(FERTILIZER)
        stock = product.stock
        order = place(session, market, agent, villager, "wechat_pay", "proxy-qr-key-004", gateway)
        proxy.cancel(session, gateway, agent, order.number)
        proxy.cancel(session, gateway, agent, order.number)
        session.refresh(product)
        assert product.stock == stock
        assert {s.status for s in order.sub_orders} == {OrderStatus.CANCELLED}


class TestCashNow:
    def test_placed_and_paid_in_one_step_with_one_key(self, session, market, agent, villager):
        order = place(session, market, agent, villager, "cash", "proxy-cash-key-01")
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert held(session, agent) == order.total_fen
        again = proxy.place(
            session,
            None,
            agent,
            villager.id,
            "cash",
            "proxy-cash-key-01",
            SETTINGS,
            items={market.product(FERTILIZER).id: 1},
        )
        assert again.order.id == order.id
        assert held(session, agent) == order.total_fen
        assert count(session, Order) == 1
        assert proxy.state(order) == "paid"

    def test_a_cash_order_refunded_returns_the_cash_through_the_agent(
        self, session, market, agent, villager, admin
    ):
        order = place(session, market, agent, villager, "cash", "proxy-cash-key-02")
        sub = order.sub_orders[0]
        manage.staff_refund(session, NoGateway(), admin, sub.number, 1000, "少了一袋", "proxy-refund-key-1")
        refund = session.scalar(select(Refund).where(Refund.sub_order_id == sub.id))
        assert (refund.status, refund.gateway_refund_id, refund.amount_fen) == (
            RefundStatus.SUCCEEDED,
            None,
            1000,
        )
        assert held(session, agent) == order.total_fen - 1000
        # The seller declines the rest: all of it back, through the agent.
        manage.decline(session, NoGateway(), market.shop.merchant, sub.number, "缺货")
        session.refresh(sub)
        assert sub.status == OrderStatus.REFUNDED and sub.refunded_fen == order.total_fen
        assert held(session, agent) == 0
        assert [m.phone for m in messages(session, order, NotificationEvent.REFUNDED)] == ["13912340000"] * 2
        assert breaches(session) == []


class TestOnCredit:
    def test_without_a_limit_there_is_no_credit(self, session, market, agent, villager):
        with pytest.raises(proxy.CreditExceeded) as caught:
            place(session, market, agent, villager, "credit", "proxy-credit-key-01")
        assert caught.value.status == 409
        assert "¥0.00" in str(caught.value.message)
        assert count(session, Order) == 0

    def test_placed_on_credit_paid_for_the_seller_then_collected_at_pickup(
        self, session, market, agent, villager, staff
    ):
        proxy.set_credit_limit(session, staff, agent.id, 50_000, "credit-limit-key-01")
        clearing = ledger.balance(session, ledger.CLEARING)
        order = place(session, market, agent, villager, "credit", "proxy-credit-key-02")
        total = order.total_fen
        assert order.payment.status == PaymentStatus.ON_CREDIT and proxy.state(order) == "on_credit"
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        assert set(
            session.scalars(select(StockReservation.status).where(StockReservation.order_id == order.id))
        ) == {ReservationStatus.COMMITTED}
        assert credit(session, agent) == total == proxy.credit_used(session, agent.id)
        assert ledger.balance(session, ledger.CLEARING) == clearing
        assert proxy.agent_credit(session, agent).available_fen == 50_000 - total
        # Not "paid" to the villager: the placed message says they pay at pickup.
        assert messages(session, order, NotificationEvent.PAID) == []
        assert [m.phone for m in messages(session, order, NotificationEvent.PROXY_PLACED)] == ["13912340000"]
        # Not payable to the seller while the cash is not even collected.
        assert ledger.cash_in_agents_hands(session, [s.id for s in order.sub_orders]) == {
            s.id for s in order.sub_orders
        }
        assert proxy.placed_orders(session, agent, status="on_credit")[0].id == order.id

        again = proxy.place(
            session,
            None,
            agent,
            villager.id,
            "credit",
            "proxy-credit-key-02",
            SETTINGS,
            items={market.product(FERTILIZER).id: 1},
        )
        assert again.order.id == order.id and credit(session, agent) == total

        made = cash.collect_on_pickup(session, agent, order)
        session.commit()
        assert [c.amount_fen for c in made] == [total]
        assert (credit(session, agent), held(session, agent)) == (0, total)
        assert order.payment.status == PaymentStatus.SUCCEEDED and proxy.state(order) == "collected"
        assert cash.collect_on_pickup(session, agent, order) == []  # once
        session.commit()
        assert held(session, agent) == total
        assert count(session, CreditCollection) == 1
        assert breaches(session) == []

        # Remitted: then (and only then) the seller may be paid for it.
        remittance = cash.declare_remittance(session, agent, total, "proxy-remit-key-1")
        cash.confirm_remittance(session, staff, remittance.id, total)
        assert ledger.cash_in_agents_hands(session, [s.id for s in order.sub_orders]) == set()

    def test_above_the_remaining_credit_is_refused_with_the_amounts(
        self, session, market, agent, villager, staff
    ):
        proxy.set_credit_limit(session, staff, agent.id, 30_000, "credit-limit-key-02")
        first = place(session, market, agent, villager, "credit", "proxy-credit-key-03")
        stock = session.get(Product, market.product(FERTILIZER).id).stock
        with pytest.raises(proxy.CreditExceeded) as caught:
            place(session, market, agent, villager, "credit", "proxy-credit-key-04")
        text = str(caught.value.message)
        left = 30_000 - first.total_fen
        assert f"¥{left // 100}.{left % 100:02d}" in text and "¥300.00" in text
        assert count(session, Order) == 1
        session.expire_all()
        assert session.get(Product, market.product(FERTILIZER).id).stock == stock
        assert credit(session, agent) == first.total_fen

    def test_a_credit_order_refunded_before_pickup_frees_the_credit(
        self, session, market, agent, villager, staff
    ):
        proxy.set_credit_limit(session, staff, agent.id, 50_000, "credit-limit-key-03")
        order = place(session, market, agent, villager, "credit", "proxy-credit-key-05")
        sub = order.sub_orders[0]
        manage.decline(session, NoGateway(), market.shop.merchant, sub.number, "缺货")  # the parcel goes back
        session.refresh(sub)
        assert sub.status == OrderStatus.REFUNDED
        assert credit(session, agent) == 0 and held(session, agent) == 0
        assert proxy.agent_credit(session, agent).available_fen == 50_000
        assert cash.collect_on_pickup(session, agent, order) == []  # nothing owed any more
        session.commit()
        assert breaches(session) == []

    def test_a_collected_credit_order_refunded_returns_the_cash_through_the_agent(
        self, session, market, agent, villager, staff, admin
    ):
        proxy.set_credit_limit(session, staff, agent.id, 50_000, "credit-limit-key-04")
        order = place(session, market, agent, villager, "credit", "proxy-credit-key-06")
        sub = order.sub_orders[0]
        manage.staff_refund(session, NoGateway(), admin, sub.number, 500, "破损", "proxy-refund-key-2")
        assert credit(session, agent) == order.total_fen - 500  # before pickup: less is owed
        cash.collect_on_pickup(session, agent, order)
        session.commit()
        assert (credit(session, agent), held(session, agent)) == (0, order.total_fen - 500)
        manage.staff_refund(session, NoGateway(), admin, sub.number, 700, "再退", "proxy-refund-key-3")
        assert held(session, agent) == order.total_fen - 1200
        assert breaches(session) == []

    def test_only_the_pickup_points_agent_collects(
        self, session, market, agent, villager, staff, make_user, village_point
    ):
        proxy.set_credit_limit(session, staff, agent.id, 50_000, "credit-limit-key-05")
        order = place(session, market, agent, villager, "credit", "proxy-credit-key-07")
        stranger = make_user(Role.AGENT, node_id=village_point(YINGDE).id)
        with pytest.raises(Forbidden):
            cash.collect_on_pickup(session, stranger, order)
        session.rollback()
        assert credit(session, agent) == order.total_fen

    def test_cash_or_credit_only_at_the_agents_own_point(self, session, market, agent, village_point, staff):
        proxy.set_credit_limit(session, staff, agent.id, 50_000, "credit-limit-key-06")
        elsewhere = village_point(YINGDE)
        for method in ("cash", "credit"):
            data = CheckoutInput(
                items={market.product(FERTILIZER).id: 1},
                idempotency_key=f"elsewhere-{method}-key",
                payment_method=method,
                delivery="pickup",
                pickup_node_id=elsewhere.id,
                pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
            )
            with pytest.raises(ValidationError):
                checkout.place_order(session, market.buyer, data, SETTINGS, placed_by=agent)
        with pytest.raises(ValidationError):  # a buyer for themselves: no credit
            market.place({FERTILIZER: 1}, SETTINGS, method="credit")
        assert count(session, Order) == 0


class TestCreditLimits:
    def test_county_staff_set_it_and_the_same_key_applies_once(self, session, agent, staff):
        row = proxy.set_credit_limit(session, staff, agent.id, 30_000, "credit-limit-key-11")
        again = proxy.set_credit_limit(session, staff, agent.id, 30_000, "credit-limit-key-11")
        assert row.agent_id == again.agent_id and proxy.credit_limit(session, agent.id) == 30_000
        with pytest.raises(Conflict):
            proxy.set_credit_limit(session, staff, agent.id, 40_000, "credit-limit-key-11")
        proxy.set_credit_limit(session, staff, agent.id, 0, "credit-limit-key-12")
        assert proxy.credit_limit(session, agent.id) == 0
        listed = proxy.county_credit(session, staff)
        assert [c.agent.id for c in listed] == [agent.id]

    @pytest.mark.parametrize("bad", [-1, proxy.MAX_CREDIT_LIMIT_FEN + 1, 10**18, "100", 1.5, True, None])
    def test_a_negative_or_absurd_limit_is_refused(self, session, agent, staff, bad):
        with pytest.raises(ValidationError):
            proxy.set_credit_limit(session, staff, agent.id, bad, "credit-limit-key-13")
        assert count(session, AgentCreditLimit) == 0

    def test_only_staff_of_the_agents_county_set_it(self, session, agent, make_user, market):
        stranger = make_user(Role.COUNTY_STAFF, county_code=YINGDE)
        for who in (stranger, agent, market.buyer):
            with pytest.raises(Forbidden):
                proxy.set_credit_limit(session, who, agent.id, 10_000, "credit-limit-key-14")
        with pytest.raises(NotFound):  # not an agent
            proxy.set_credit_limit(session, stranger, market.buyer.id, 10_000, "credit-limit-key-15")
        with pytest.raises(Forbidden):
            proxy.agent_credit(session, stranger, agent.id)
        assert count(session, AgentCreditLimit) == 0


class TestVillagerWithoutAPhone:
    def test_the_sms_reaches_the_point(self, session, market, agent, point):
        lonely = register(session, agent, point, name="李伯", phone="")
        order = place(session, market, agent, lonely, "cash", "proxy-nophone-key")
        expected = proxy.orders.contact_phone(lonely, point, agent)
        assert order.recipient_phone == expected and expected  # the point's mobile, or the agent's
        assert [m.phone for m in messages(session, order, NotificationEvent.PROXY_PLACED)] == [expected]

    def test_a_linked_villager_is_the_orders_buyer(self, session, market, agent, villager, make_user):
        account = make_user(Role.BUYER, phone="13912340000", name="陈阿婆")
        villagers.link_on_register(session, account)
        session.commit()
        order = place(session, market, agent, villager, "cash", "proxy-linked-key")
        assert (order.buyer_id, order.placed_by_id, order.villager_id) == (account.id, agent.id, villager.id)


def test_proxy_orders_count_against_the_agents_caps_not_their_own(session, market, agent, villager, gateway):
    tight = CheckoutSettings(free_shipping_from_fen=0, max_unpaid_orders=1, max_proxy_unpaid_orders=2)
    fertilizer = market.product(FERTILIZER).id
    for i in range(2):
        proxy.place(
            session,
            None,
            agent,
            villager.id,
            "wechat_pay",
            f"proxy-cap-key-{i:02d}",
            tight,
            items={fertilizer: 1},
        )
    with pytest.raises(checkout.HoldLimit):
        proxy.place(
            session, None, agent, villager.id, "wechat_pay", "proxy-cap-key-99", tight, items={fertilizer: 1}
        )
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0
    assert count(session, Order) == 2
    # The agent's own shopping is not held up by the villagers' unpaid orders.
    own = market.place({"梅县蜜柚": 1}, tight, buyer=agent)
    assert own.villager_id is None
    assert payments.pay_state(own) in ("card", "wallet_retry")
