"""Placing orders and paying for them on the real database against the real localstripe:
stock is reserved without oversell, placement is idempotent, payments, pre-sale capture,
refunds and cancellations move stock, order states and the ledger exactly once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    Order,
    OrderEvent,
    OrderStatus,
    PaymentStatus,
    Product,
    ProductStatus,
    ReservationStatus,
    StockReservation,
    SubOrder,
    clock,
)
from services import ledger
from services.errors import Conflict, ValidationError
from services.orders import checkout, manage, reservations
from services.orders.checkout import OutOfStock
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import CardDeclined
from tests.conftest import count
from tests.factories import receive

KEYS = {n: f"refund-{uuid.uuid4().hex}" for n in range(1, 4)}
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)


def fresh(session, product: Product) -> Product:  # type: ignore[no-untyped-def]
    session.refresh(product)
    return product


class TestPlaceOrder:
    def test_one_sub_order_per_seller_with_its_own_shipping_and_the_stock_reserved(self, session, market):
        order = market.place({"梅县金柚": 2, "冰鲜走地鸡": 1, "英德红茶": 3}, SETTINGS)
        assert len(order.sub_orders) == 2
        by_seller = {s.seller_id: s for s in order.sub_orders}
        meixian = by_seller[market.shop.meixian_farmer.id]
        yingde = by_seller[market.shop.yingde_farmer.id]
        assert meixian.items_fen == 2 * 4500 + 9800
        # The chicken is chilled: the whole parcel travels chilled. 2 jin + 1.5 kg = 2.5 kg.
        assert meixian.storage_class.value == "chilled"
        assert meixian.weight_g == 2500
        assert meixian.shipping_fen == 1500 + 2 * 400
        assert yingde.items_fen == 3 * 12800
        assert yingde.shipping_fen == 800
        assert order.total_fen == sum(s.total_fen for s in order.sub_orders)
        assert meixian.commission_fen == meixian.items_fen * 5 // 100
        assert all(s.status == OrderStatus.PENDING_PAYMENT for s in order.sub_orders)
        gold = fresh(session, market.product("梅县金柚"))
        assert (gold.stock, gold.reserved) == (8, 2)
        held = session.scalars(select(StockReservation).where(StockReservation.order_id == order.id)).all()
        assert sorted(r.quantity for r in held) == [1, 2, 3]
        assert {r.status for r in held} == {ReservationStatus.HELD}
        assert order.payment.status == PaymentStatus.CREATING
        assert order.payment.amount_fen == order.total_fen

    def test_the_same_key_returns_the_same_order(self, session, market):
        first = market.place({"梅县金柚": 1}, SETTINGS, key="double-tap-0001")
        again = market.place({"梅县金柚": 1}, SETTINGS, key="double-tap-0001")
        assert again.id == first.id
        assert count(session, Order) == 1
        assert fresh(session, market.product("梅县金柚")).stock == 9

    def test_the_same_key_for_a_different_cart_is_refused(self, session, market):
        market.place({"梅县金柚": 1}, SETTINGS, key="double-tap-0002")
        with pytest.raises(Conflict):
            market.place({"梅县金柚": 2}, SETTINGS, key="double-tap-0002")
        assert count(session, Order) == 1

    def test_more_than_the_stock_is_refused_and_nothing_is_written(self, session, market):
        with pytest.raises(OutOfStock) as caught:
            market.place({"梅县金柚": 1, "英德红茶": 11}, SETTINGS)
        assert f"items.{market.product('英德红茶').id}" in caught.value.field_errors
        assert count(session, Order) == 0
        assert count(session, StockReservation) == 0
        assert fresh(session, market.product("梅县金柚")).stock == 10

    def test_the_last_units_sell_the_product_out_and_release_brings_it_back(self, session, market, gateway):
        order = market.place({"梅县金柚": 10}, SETTINGS)
        gold = fresh(session, market.product("梅县金柚"))
        assert (gold.stock, gold.status) == (0, ProductStatus.SOLD_OUT)
        with pytest.raises(OutOfStock):
            market.place({"梅县金柚": 1}, SETTINGS)
        payments.cancel_order(session, gateway, order, actor=market.buyer)
        gold = fresh(session, gold)
        assert (gold.stock, gold.reserved, gold.status) == (10, 0, ProductStatus.ACTIVE)
        assert {s.status for s in fresh_order(session, order).sub_orders} == {OrderStatus.CANCELLED}

    @pytest.mark.parametrize("qty", [0, -1, 1000, "2.5", "两", True, None])
    def test_bad_quantities_are_refused(self, session, market, qty):
        with pytest.raises(ValidationError):
            market.place({market.product("梅县金柚").id: qty}, SETTINGS)
        assert count(session, Order) == 0

    def test_paused_draft_and_unknown_products_cannot_be_bought(self, session, market):
        for name in ("暂停的柚子", "草稿里的柚子", "售罄的荔枝干"):
            with pytest.raises(OutOfStock):
                market.place({name: 1}, SETTINGS)
        with pytest.raises(ValidationError):
            market.place({999999: 1}, SETTINGS)
        assert count(session, Order) == 0

    def test_a_seller_cannot_buy_their_own_product(self, session, market):
        with pytest.raises(ValidationError):
            market.place({"梅县金柚": 1}, SETTINGS, buyer=market.shop.meixian_farmer)

    def test_address_must_be_a_real_town_or_village_and_a_mobile_number(self, session, market):
        from services.orders.addresses import AddressInput

        bad = AddressInput(recipient="", phone="12345", division_code="441403", detail="")
        with pytest.raises(ValidationError) as caught:
            market.place({"梅县金柚": 1}, SETTINGS, address=bad)
        assert set(caught.value.field_errors) >= {"recipient", "phone", "division_code", "detail"}
        assert count(session, Order) == 0

    def test_cash_is_not_a_buyer_payment_method(self, session, market):
        with pytest.raises(ValidationError):
            market.place({"梅县金柚": 1}, SETTINGS, method="cash")


def fresh_order(session, order: Order) -> Order:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Order, order.id)  # type: ignore[return-value]


class TestCardPayment:
    def test_paying_sells_the_stock_moves_sub_orders_and_posts_the_ledger(self, session, market, gateway):
        order = market.place({"梅县金柚": 2, "英德红茶": 1}, SETTINGS)
        payment = payments.ensure_intent(session, gateway, order)
        assert payment.intent_id and payment.client_secret
        market.pay(order, gateway)
        order = fresh_order(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment.amount_received_fen == order.total_fen
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        gold = fresh(session, market.product("梅县金柚"))
        assert (gold.stock, gold.reserved, gold.sales_count) == (8, 0, 2)
        assert ledger.trial_balance(session) == 0
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        for sub in order.sub_orders:
            assert ledger.seller_payable(session, sub.seller_id) == sub.items_fen - sub.commission_fen

    def test_applying_the_same_news_again_changes_nothing(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        market.pay(order, gateway)
        intent = gateway.retrieve_payment_intent(order.payment.intent_id)
        for _ in range(3):
            payments.apply_intent(session, gateway, intent)
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        assert fresh(session, market.product("梅县金柚")).sales_count == 1
        events = session.scalars(select(OrderEvent).where(OrderEvent.to_status == OrderStatus.PAID)).all()
        assert len(events) == 1

    def test_a_declined_card_leaves_the_order_payable(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        with pytest.raises(CardDeclined):
            market.pay(order, gateway, card="pm_card_chargeDeclined")
        order = fresh_order(session, order)
        assert order.payment.status in (PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.CREATING)
        assert order.sub_orders[0].status == OrderStatus.PENDING_PAYMENT
        assert fresh(session, market.product("梅县金柚")).reserved == 1
        assert ledger.trial_balance(session) == 0
        assert ledger.balance(session, "buyer_payments_clearing") == 0
        market.pay(order, gateway)
        assert fresh_order(session, order).payment.status == PaymentStatus.SUCCEEDED

    def test_a_repeated_confirm_charges_once(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        market.pay(order, gateway)
        market.pay(order, gateway)  # the buyer's second tap
        intent = gateway.retrieve_payment_intent(fresh_order(session, order).payment.intent_id)
        assert intent.amount_received == order.total_fen
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen


class TestExpiryAndReconciliation:
    def test_an_unpaid_order_past_its_time_is_cancelled_at_the_gateway_and_its_stock_returns(
        self, session, market, gateway
    ):
        order = market.place({"梅县金柚": 3}, SETTINGS)
        payments.ensure_intent(session, gateway, order)
        later = clock.now() + SETTINGS.payment_window + timedelta(minutes=1)
        report = payments.reconcile(session, gateway, now=later)
        assert report.expired == 1
        order = fresh_order(session, order)
        assert order.payment.status == PaymentStatus.CANCELED
        assert gateway.retrieve_payment_intent(order.payment.intent_id).status == "canceled"
        gold = fresh(session, market.product("梅县金柚"))
        assert (gold.stock, gold.reserved) == (10, 0)
        assert {s.status for s in order.sub_orders} == {OrderStatus.CANCELLED}

    def test_a_payment_whose_webhook_was_lost_is_found_paid(self, session, market, gateway):
        order = market.place({"梅县金柚": 1}, SETTINGS)
        payment = payments.ensure_intent(session, gateway, order)
        # Paid at the gateway, but our side never heard (no webhook, no return page).
        gateway.confirm_payment_intent(
            payment.intent_id, payment_method="pm_card_visa", idempotency_key="direct-1"
        )
        assert fresh_order(session, order).payment.status != PaymentStatus.SUCCEEDED
        report = payments.reconcile(session, gateway, now=clock.now() + timedelta(minutes=10))
        assert report.synced == 1
        assert fresh_order(session, order).payment.status == PaymentStatus.SUCCEEDED

    def test_reserved_counts_are_recomputed_from_reservations(self, session, market):
        market.place({"梅县金柚": 2}, SETTINGS)
        gold = market.product("梅县金柚")
        session.execute(
            Product.__table__.update().where(Product.id == gold.id).values(reserved=7)  # type: ignore[attr-defined]
        )
        session.commit()
        wrong = reservations.reconcile_reserved(session)
        assert wrong == {gold.id: (7, 2)}
        assert fresh(session, gold).reserved == 2
        assert reservations.reconcile_reserved(session) == {}


class TestPresale:
    @pytest.fixture()
    def lychee(self, market):  # type: ignore[no-untyped-def]
        from datetime import date

        return market.shop.add(
            "预售妃子笑荔枝", "citrus", 3000, stock=100, presale=True, ships_from=date(2027, 5, 20)
        )

    def test_authorised_at_order_captured_at_hand_in(self, session, market, gateway, lychee, admin):
        order = market.place({lychee.id: 4}, SETTINGS)
        assert order.payment.capture_method == "manual"
        market.pay(order, gateway)
        order = fresh_order(session, order)
        assert order.payment.status == PaymentStatus.REQUIRES_CAPTURE
        assert order.sub_orders[0].status == OrderStatus.PAID
        assert ledger.balance(session, "buyer_payments_clearing") == 0  # nothing taken yet
        sub = order.sub_orders[0]
        farmer = market.shop.meixian_farmer
        manage.move(session, farmer, sub.number, OrderStatus.ACCEPTED)
        receive(session, gateway, sub)  # the intake at the point: weighed as ordered
        order = fresh_order(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.sub_orders[0].status == OrderStatus.HANDED_IN
        assert gateway.retrieve_payment_intent(order.payment.intent_id).amount_received == order.total_fen
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen
        assert ledger.trial_balance(session) == 0

    def test_a_failed_harvest_releases_the_authorisation(self, session, market, gateway, lychee):
        order = market.place({lychee.id: 4}, SETTINGS)
        market.pay(order, gateway)
        sub = fresh_order(session, order).sub_orders[0]
        manage.decline(session, gateway, market.shop.meixian_farmer, sub.number, "台风，荔枝失收")
        order = fresh_order(session, order)
        assert order.payment.status == PaymentStatus.CANCELED
        assert gateway.retrieve_payment_intent(order.payment.intent_id).status == "canceled"
        assert order.sub_orders[0].status == OrderStatus.CANCELLED
        assert ledger.trial_balance(session) == 0 and ledger.balance(session, "buyer_payments_clearing") == 0

    def test_presale_cannot_be_mixed_or_paid_by_wallet(self, session, market, lychee):
        with pytest.raises(ValidationError):
            market.place({lychee.id: 1, "英德红茶": 1}, SETTINGS)
        with pytest.raises(ValidationError):
            market.place({lychee.id: 1}, SETTINGS, method="wechat_pay")


class TestRefunds:
    def test_partial_then_full_refund_flows_back_into_the_ledger(self, session, market, gateway, admin):
        order = market.place({"梅县金柚": 2, "英德红茶": 1}, SETTINGS)
        market.pay(order, gateway)
        sub = next(
            s for s in fresh_order(session, order).sub_orders if s.seller_id == market.shop.meixian_farmer.id
        )
        owed_before = ledger.seller_payable(session, sub.seller_id)
        manage.staff_refund(session, gateway, admin, sub.number, 1000, "一个柚子压坏了", KEYS[1])
        sub = session.get(SubOrder, sub.id)
        assert (sub.status, sub.refunded_fen) == (OrderStatus.PAID, 1000)  # money, not a state
        assert ledger.trial_balance(session) == 0
        assert ledger.balance(session, "buyer_payments_clearing") == order.total_fen - 1000
        assert ledger.seller_payable(session, sub.seller_id) < owed_before
        # A repeated submit of the same refund form does nothing more.
        manage.staff_refund(session, gateway, admin, sub.number, 1000, "一个柚子压坏了", KEYS[1])
        assert session.get(SubOrder, sub.id).refunded_fen == 1000
        manage.staff_refund(session, gateway, admin, sub.number, None, "全部退款", KEYS[2])
        sub = session.get(SubOrder, sub.id)
        assert (sub.status, sub.refunded_fen) == (OrderStatus.REFUNDED, sub.total_fen)
        # This farmer sold nothing else: fully refunded, they are owed nothing.
        assert ledger.seller_payable(session, sub.seller_id) == 0
        assert ledger.trial_balance(session) == 0
        with pytest.raises(ValidationError):
            payments.refund_sub_order(session, gateway, admin, sub.id, 1, reason="more")
        intent = gateway.retrieve_payment_intent(order.payment.intent_id)
        assert intent.amount_received == order.total_fen

    def test_a_seller_declining_a_paid_order_refunds_it(self, session, market, gateway):
        order = market.place({"英德红茶": 1}, SETTINGS)
        market.pay(order, gateway)
        sub = fresh_order(session, order).sub_orders[0]
        manage.decline(session, gateway, market.shop.yingde_farmer, sub.number, "茶叶受潮")
        sub = session.get(SubOrder, sub.id)
        assert (sub.status, sub.refunded_fen) == (OrderStatus.REFUNDED, sub.total_fen)
        assert ledger.seller_payable(session, sub.seller_id) == 0
        assert ledger.balance(session, "buyer_payments_clearing") == 0
        assert ledger.trial_balance(session) == 0

    def test_refund_more_than_paid_is_refused(self, session, market, gateway, admin):
        order = market.place({"英德红茶": 1}, SETTINGS)
        market.pay(order, gateway)
        sub = fresh_order(session, order).sub_orders[0]
        with pytest.raises(ValidationError):
            manage.staff_refund(session, gateway, admin, sub.number, sub.total_fen + 1, "x", KEYS[3])
        assert session.get(SubOrder, sub.id).refunded_fen == 0


class TestWhoMayDoWhat:
    def test_another_buyer_cannot_see_or_cancel_an_order(self, session, market, make_user, gateway):
        from services.errors import NotFound

        order = market.place({"梅县金柚": 1}, SETTINGS)
        stranger = make_user()
        with pytest.raises(NotFound):
            manage.visible_order(session, stranger, order.number)
        with pytest.raises(NotFound):
            manage.cancel_unpaid(session, gateway, stranger, order.number)

    def test_a_buyer_cannot_accept_their_own_order(self, session, market, gateway):
        from services.errors import Forbidden

        order = market.place({"梅县金柚": 1}, SETTINGS)
        market.pay(order, gateway)
        sub = fresh_order(session, order).sub_orders[0]
        with pytest.raises((Forbidden, checkout.Conflict)):
            manage.move(session, market.buyer, sub.number, OrderStatus.ACCEPTED)
        assert session.get(SubOrder, sub.id).status == OrderStatus.PAID
