"""Issue 9, finding 8: money is 64-bit in the database, and a checkout never totals more than
the payment gateway can charge. On PostgreSQL a 32-bit INTEGER overflows at ¥21,474,836.47;
SQLite's INTEGER is 64-bit already (the migration leaves it), so the overflow tests matter there."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, inspect, select

from domain import Order, Product, StockReservation
from services import ledger
from services.errors import ValidationError
from services.orders import checkout, pricing
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import backend, count
from tests.factories import add_seller, add_user, paid_and_completed

SETTINGS = CheckoutSettings()
BIG = 3_000_000_000  # ¥30,000,000: past 2**31 - 1 fen

MONEY_COLUMNS = {
    "orders": ["items_fen", "shipping_fen", "total_fen"],
    "sub_orders": ["items_fen", "shipping_fen", "total_fen", "commission_fen", "refunded_fen"],
    "order_lines": ["unit_price_fen", "line_fen"],
    "payments": ["amount_fen", "amount_received_fen", "amount_refunded_fen"],
    "refunds": ["amount_fen"],
    "ledger_entries": ["amount_fen"],
    "payout_batches": ["total_fen"],
    "payouts": ["amount_fen"],
    "products": ["price_fen"],
}


@pytest.fixture()
def dear(market) -> Product:  # type: ignore[no-untyped-def]
    """The dearest a listing may be: ¥100,000 a unit, with stock for a full line."""
    return market.shop.add("沉香木", "citrus", 10_000_000, stock=999)


def place(market, product: Product, qty: int):  # type: ignore[no-untyped-def]
    data = CheckoutInput(
        items={product.id: qty}, idempotency_key=checkout.new_idempotency_key(), address=market.address()
    )
    return checkout.place_order(market.session, market.buyer, data, SETTINGS)


@pytest.mark.skipif(backend() != "postgresql", reason="SQLite's INTEGER is 64-bit already")
def test_every_money_column_is_bigint_on_postgresql(session):  # type: ignore[no-untyped-def]
    inspector = inspect(session.connection())
    narrow = []
    for table, names in MONEY_COLUMNS.items():
        types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
        narrow += [f"{table}.{n}" for n in names if not isinstance(types[n], BigInteger)]
    assert narrow == []


def test_the_gateway_maximum_is_stripes():
    # "The amount value supports up to eight digits" (Stripe API, PaymentIntent.amount).
    assert pricing.STRIPE_MAX_AMOUNT == 99_999_999
    assert SETTINGS.max_checkout_total_fen == pricing.STRIPE_MAX_AMOUNT


def test_a_line_of_999_at_100000_yuan_is_refused_with_a_clear_message(session, market, dear):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        place(market, dear, 999)
    assert caught.value.status == 422
    assert "999,999.99" in str(caught.value.message)
    assert "items" in caught.value.field_errors
    assert count(session, Order) == 0 and count(session, StockReservation) == 0
    session.refresh(dear)
    assert dear.stock == 999


def test_just_below_the_cap_is_placed_and_paid_exactly(session, market, dear, gateway):  # type: ignore[no-untyped-def]
    order = place(market, dear, 9).order  # ¥900,000, free shipping
    assert (order.total_fen, order.payment.amount_fen) == (90_000_000, 90_000_000)
    market.pay(order, gateway)
    assert order.payment.amount_received_fen == 90_000_000
    assert ledger.balance(session, "buyer_payments_clearing") == 90_000_000
    assert ledger.trial_balance(session) == 0


def test_amounts_past_32_bits_are_stored_and_summed_exactly(session):  # type: ignore[no-untyped-def]
    buyer, seller = add_user(session), add_seller(session)
    subs = [
        paid_and_completed(session, buyer, seller, items=BIG, commission=BIG // 20, shipping=12_345)
        for _ in range(2)
    ]
    session.commit()
    session.expire_all()
    stored = session.scalars(select(Order.total_fen).where(Order.id.in_([s.order_id for s in subs]))).all()
    assert stored == [BIG + 12_345] * 2
    assert ledger.balance(session, "buyer_payments_clearing") == 2 * (BIG + 12_345)
    assert ledger.seller_payable(session, seller.id) == 2 * (BIG - BIG // 20)
    assert ledger.trial_balance(session) == 0


def test_the_api_answers_422_in_chinese(client, session, market, dear, bearer):  # type: ignore[no-untyped-def]
    body = market.api_body({dear.id: 999}, "money-cap-0001")
    resp = client.post("/api/v1/orders", json=body, headers=bearer(market.buyer))
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "999,999.99" in resp.get_json()["message"] and "订单" in resp.get_json()["message"]
    assert count(session, Order) == 0
