"""Issue 9, finding 4: one buyer cannot hold the stock unpaid. Open unpaid orders and the units
they hold are capped per buyer (and per product), placing is rate-limited per buyer, large
orders get a shorter payment window; a village agent placing for villagers has its own, larger
caps as a placer. Idempotent replays still return the order already placed.

The cap check under real concurrency (two checkouts of one buyer at once) is in
tests/integration/test_checkout_concurrency.py (PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import Order, Product, Role, StockReservation
from services.errors import Conflict, RateLimited
from services.orders import checkout
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import count

# The defaults a deployment gets (docs/deploy.md): caps on.
SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


def no_caps(**rules) -> CheckoutSettings:  # type: ignore[no-untyped-def]
    """Every cap off (0), but `rules`: one rule at a time can be tried."""
    off = dict.fromkeys(
        (
            "max_unpaid_orders",
            "max_unpaid_units",
            "max_unpaid_units_per_product",
            "order_rate_limit",
            "max_proxy_unpaid_orders",
            "max_proxy_unpaid_units",
            "proxy_order_rate_limit",
        ),
        0,
    )
    return replace(SETTINGS, **{**off, **rules})


@pytest.fixture()
def bulk(market) -> list[Product]:  # type: ignore[no-untyped-def]
    """Three products with plenty of stock."""
    return [market.shop.add(f"大批柚子{i}", "citrus", 300, stock=500) for i in range(3)]


def stock_of(session, product: Product) -> int:  # type: ignore[no-untyped-def]
    session.refresh(product)
    return product.stock


def place(market, items, settings, *, buyer=None, placed_by=None, key=None):  # type: ignore[no-untyped-def]
    data = CheckoutInput(
        items={(p.id if isinstance(p, Product) else p): q for p, q in items.items()},
        idempotency_key=key or checkout.new_idempotency_key(),
        address=market.address(),
    )
    return checkout.place_order(market.session, buyer or market.buyer, data, settings, placed_by=placed_by)


class TestUnpaidOrders:
    def test_a_buyer_holds_at_most_three_unpaid_orders(self, session, market, bulk):
        for _ in range(3):
            place(market, {bulk[0]: 1}, SETTINGS)
        with pytest.raises(Conflict) as caught:
            place(market, {bulk[1]: 1}, SETTINGS)
        assert caught.value.status == 409
        assert "3 unpaid orders" in str(caught.value.message)
        assert count(session, Order) == 3
        assert stock_of(session, bulk[1]) == 500

    def test_a_cancelled_order_frees_its_slot(self, session, market, bulk, gateway):
        from services.payments import service as payments

        orders = [place(market, {bulk[0]: 1}, SETTINGS).order for _ in range(3)]
        payments.cancel_order(session, gateway, orders[0], actor=market.buyer)
        assert place(market, {bulk[1]: 1}, SETTINGS).created

    def test_an_expired_hold_no_longer_counts(self, session, market, bulk, clock):
        for _ in range(3):
            place(market, {bulk[0]: 1}, SETTINGS)
        clock.advance(SETTINGS.payment_window + timedelta(seconds=1))
        assert place(market, {bulk[1]: 1}, SETTINGS).created

    def test_another_buyer_is_not_affected(self, session, market, bulk, make_user):
        for _ in range(3):
            place(market, {bulk[0]: 1}, SETTINGS)
        assert place(market, {bulk[0]: 1}, SETTINGS, buyer=make_user(Role.BUYER)).created

    def test_a_replay_at_the_cap_returns_the_order_already_placed(self, session, market, bulk):
        first = place(market, {bulk[0]: 1}, SETTINGS, key="caps-replay-0001").order
        place(market, {bulk[0]: 1}, SETTINGS)
        place(market, {bulk[0]: 1}, SETTINGS)
        again = place(market, {bulk[0]: 1}, SETTINGS, key="caps-replay-0001")
        assert (again.order.id, again.created) == (first.id, False)
        assert count(session, Order) == 3


class TestUnpaidUnits:
    def test_one_order_of_120_units_is_refused_and_stays_on_sale(self, session, market, bulk):
        with pytest.raises(Conflict) as caught:
            place(market, {bulk[0]: 120}, SETTINGS)
        assert "at most" in str(caught.value.message)
        assert count(session, Order) == 0 and count(session, StockReservation) == 0
        assert stock_of(session, bulk[0]) == 500

    def test_units_held_unpaid_are_capped_across_orders(self, session, market, bulk):
        place(market, {bulk[0]: 25}, SETTINGS)
        place(market, {bulk[1]: 25}, SETTINGS)
        with pytest.raises(Conflict) as caught:
            place(market, {bulk[2]: 1}, SETTINGS)
        assert "50" in str(caught.value.message)
        assert stock_of(session, bulk[2]) == 500

    def test_units_of_one_product_are_capped(self, session, market, bulk):
        place(market, {bulk[0]: 20}, SETTINGS)
        with pytest.raises(Conflict) as caught:
            place(market, {bulk[0]: 11}, SETTINGS)
        assert f"items.{bulk[0].id}" in caught.value.field_errors
        assert "30" in str(caught.value.message)
        assert place(market, {bulk[0]: 10}, SETTINGS).created

    def test_paid_units_do_not_count(self, session, market, bulk, gateway):
        order = place(market, {bulk[0]: 30}, SETTINGS).order
        market.pay(order, gateway)
        assert place(market, {bulk[0]: 30}, SETTINGS).created


class TestRateLimit:
    def test_at_most_ten_orders_in_ten_minutes(self, session, market, bulk, clock):
        settings = no_caps(order_rate_limit=10, order_rate_window=timedelta(minutes=10))
        for _ in range(10):
            place(market, {bulk[0]: 1}, settings)
            clock.advance(timedelta(seconds=30))
        with pytest.raises(RateLimited) as caught:
            place(market, {bulk[0]: 1}, settings)
        assert caught.value.status == 429
        assert count(session, Order) == 10
        clock.advance(timedelta(minutes=6))  # the first orders leave the window
        assert place(market, {bulk[0]: 1}, settings).created

    def test_the_default_settings_limit_the_rate(self, session, market, bulk, gateway):
        # Paying each order keeps the buyer under the unpaid caps: only the rate stops them.
        for _ in range(SETTINGS.order_rate_limit):
            market.pay(place(market, {bulk[0]: 1}, SETTINGS).order, gateway)
        with pytest.raises(RateLimited):
            place(market, {bulk[0]: 1}, SETTINGS)


class TestPaymentWindow:
    def test_a_large_order_is_held_for_a_shorter_time(self, session, market, bulk, clock):
        big = place(market, {bulk[0]: 21}, SETTINGS).order
        small = place(market, {bulk[1]: 20}, SETTINGS).order
        assert big.pay_by - big.created_at == timedelta(minutes=10)
        assert small.pay_by - small.created_at == timedelta(minutes=30)
        held = session.scalars(select(StockReservation).where(StockReservation.order_id == big.id)).one()
        assert held.expires_at == big.pay_by
        assert SETTINGS.payment_window_for(21) == timedelta(minutes=10)


class TestProxyOrders:
    """A village agent placing for villagers: the villager's caps are theirs, the agent's proxy
    orders count against the placer's own larger caps and rate, never as one buyer's."""

    @pytest.fixture()
    def agent(self, make_user):  # type: ignore[no-untyped-def]
        return make_user(Role.BUYER, name="村小二")

    def test_an_agent_is_not_capped_as_one_buyer(self, session, market, bulk, agent, make_user):
        villagers = [make_user(Role.BUYER) for _ in range(5)]
        for villager in villagers:
            assert place(market, {bulk[0]: 12}, SETTINGS, buyer=villager, placed_by=agent).created
        assert count(session, Order, Order.placed_by_id == agent.id) == 5

    def test_the_villagers_own_cap_still_holds(self, session, market, bulk, agent, make_user):
        villager = make_user(Role.BUYER)
        for _ in range(3):
            place(market, {bulk[0]: 1}, SETTINGS, buyer=villager, placed_by=agent)
        with pytest.raises(Conflict):
            place(market, {bulk[0]: 1}, SETTINGS, buyer=villager, placed_by=agent)

    def test_the_placer_has_caps_of_its_own(self, session, market, bulk, agent, make_user):
        settings = replace(SETTINGS, max_proxy_unpaid_orders=4)
        for _ in range(4):
            place(market, {bulk[0]: 1}, settings, buyer=make_user(Role.BUYER), placed_by=agent)
        with pytest.raises(Conflict) as caught:
            place(market, {bulk[0]: 1}, settings, buyer=make_user(Role.BUYER), placed_by=agent)
        assert "for others" in str(caught.value.message)
        units = replace(SETTINGS, max_proxy_unpaid_units=4)  # 4 held: one more is too many
        with pytest.raises(Conflict):
            place(market, {bulk[1]: 1}, units, buyer=make_user(Role.BUYER), placed_by=agent)

    def test_the_placer_is_rate_limited(self, session, market, bulk, agent, make_user):
        settings = no_caps(proxy_order_rate_limit=3)
        for _ in range(3):
            place(market, {bulk[0]: 1}, settings, buyer=make_user(Role.BUYER), placed_by=agent)
        with pytest.raises(RateLimited):
            place(market, {bulk[0]: 1}, settings, buyer=make_user(Role.BUYER), placed_by=agent)


class TestOverHttp:
    """The API answers the caps with 409 and the rate limit with 429, in Chinese."""

    @pytest.fixture()
    def headers(self, market, bearer):  # type: ignore[no-untyped-def]
        return bearer(market.buyer)

    def body(self, market, product: Product, n: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
        return market.api_body({product.id: 1}, f"caps-http-{n:04d}")

    def test_the_fourth_unpaid_order_is_a_409_in_chinese(self, client, market, bulk, headers):
        for n in range(3):
            resp = client.post("/api/v1/orders", json=self.body(market, bulk[0], n), headers=headers)
            assert resp.status_code == 201, resp.get_data(as_text=True)
        resp = client.post("/api/v1/orders", json=self.body(market, bulk[0], 3), headers=headers)
        assert resp.status_code == 409, resp.get_data(as_text=True)
        assert "未付款" in resp.get_json()["message"]
        # The replay of an order already placed is still answered with that order.
        again = client.post("/api/v1/orders", json=self.body(market, bulk[0], 0), headers=headers)
        assert again.status_code == 200, again.get_data(as_text=True)

    def test_too_many_orders_is_a_429_in_chinese(self, app, client, market, bulk, headers, monkeypatch):  # type: ignore[no-untyped-def]
        monkeypatch.setitem(app.extensions, "checkout_settings", no_caps(order_rate_limit=2))
        for n in range(2):
            resp = client.post("/api/v1/orders", json=self.body(market, bulk[0], n), headers=headers)
            assert resp.status_code == 201, resp.get_data(as_text=True)
        resp = client.post("/api/v1/orders", json=self.body(market, bulk[0], 2), headers=headers)
        assert resp.status_code == 429, resp.get_data(as_text=True)
        assert "频繁" in resp.get_json()["message"]


class TestSettings:
    def test_the_config_names_every_cap(self):
        settings = CheckoutSettings.from_mapping(
            {
                "MAX_UNPAID_ORDERS": "5",
                "MAX_UNPAID_UNITS": "80",
                "MAX_UNPAID_UNITS_PER_PRODUCT": "40",
                "ORDER_RATE_LIMIT": "0",
                "ORDER_RATE_WINDOW_MINUTES": "15",
                "LARGE_ORDER_UNITS": "30",
                "LARGE_ORDER_PAYMENT_WINDOW_MINUTES": "5",
                "MAX_PROXY_UNPAID_ORDERS": "40",
                "MAX_PROXY_UNPAID_UNITS": "600",
                "PROXY_ORDER_RATE_LIMIT": "90",
                "MAX_CHECKOUT_TOTAL_FEN": "5000000",
            }
        )
        assert (settings.max_unpaid_orders, settings.max_unpaid_units) == (5, 80)
        assert settings.max_unpaid_units_per_product == 40 and settings.order_rate_limit == 0
        assert settings.order_rate_window == timedelta(minutes=15)
        assert settings.payment_window_for(31) == timedelta(minutes=5)
        assert settings.payment_window_for(30) == timedelta(minutes=30)
        assert (settings.max_proxy_unpaid_orders, settings.max_proxy_unpaid_units) == (40, 600)
        assert settings.proxy_order_rate_limit == 90 and settings.max_checkout_total_fen == 5_000_000

    @pytest.mark.parametrize(
        "raw",
        [
            {"MAX_UNPAID_ORDERS": "-1"},
            {"MAX_CHECKOUT_TOTAL_FEN": "100000000"},
            {"MAX_CHECKOUT_TOTAL_FEN": "0"},
        ],
    )
    def test_a_setting_out_of_range_stops_the_app(self, raw):
        with pytest.raises(ValueError):
            CheckoutSettings.from_mapping(raw)
