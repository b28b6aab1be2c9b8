"""The buyer's cart, checkout and pay pages over HTTP, against the real localstripe: a guest's cart
merged at login, one order split per seller with each seller's shipping, idempotent placement,
posted prices ignored, bad quantities refused without a write, someone else's order not found,
card and WeChat Pay payments, and a payment gateway that is down.

Assertions look at status codes, form values and the database, not at English words (the pages
speak Chinese by default), except where the message itself is the point."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from domain import (
    Address,
    CartItem,
    Order,
    OrderStatus,
    PaymentStatus,
    Product,
    ReservationStatus,
    StockReservation,
)
from services import catalog, places
from services.orders import cart as carts
from services.orders.pricing import CheckoutSettings
from services.payments.stripe import StripeGateway
from tests.conftest import MEIXIAN, count, login
from tests.factories import Market

SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture()
def gateway(app, localstripe, monkeypatch) -> Iterator[StripeGateway]:  # type: ignore[no-untyped-def]
    """The app's payment gateway, pointed at the run's localstripe; shipping is never free."""
    with StripeGateway(localstripe.url, localstripe.secret_key, backoff=0.01) as gw:
        monkeypatch.setitem(app.extensions, "payment_gateway", gw)
        monkeypatch.setitem(app.extensions, "checkout_settings", SETTINGS)
        yield gw


@pytest.fixture()
def gateway_down(app, monkeypatch) -> Iterator[StripeGateway]:  # type: ignore[no-untyped-def]
    with StripeGateway(CLOSED_PORT_URL, "sk_test_x", max_retries=0, timeout=2) as gw:
        monkeypatch.setitem(app.extensions, "payment_gateway", gw)
        monkeypatch.setitem(app.extensions, "checkout_settings", SETTINGS)
        yield gw


def page_of(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'value="([^"]*)"', tag.group())
    return htmllib.unescape(value.group(1)) if value else ""


def fresh(session, obj):  # type: ignore[no-untyped-def]
    session.refresh(obj)
    return obj


def add(client, product: Product, quantity: Any = 1):  # type: ignore[no-untyped-def]
    return client.post(f"/cart/add/{product.id}", data={"quantity": str(quantity)})


def guest_cart(client) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with client.session_transaction() as sess:
        return dict(sess.get("cart") or {})


def checkout_form(client, market: Market, **changes: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The checkout page's form filled in with a new address in 梅县区, paid by card."""
    resp = client.get("/cart/checkout")
    assert resp.status_code == 200, resp.status_code
    page = page_of(resp)
    data = {
        "key": input_value(page, "key") or "",
        "items": input_value(page, "items") or "",
        "items_fen": input_value(page, "items_fen") or "",
        "flash_items": input_value(page, "flash_items") or "",
        "delivery": "home",
        "address_id": "new",
        "recipient": "陈小姐",
        "phone": "13912345678",
        "detail": "幸福路8号",
        "save_address": "y",
        "payment_method": "card",
        "action": "place",
        **places.picker_selection(market.village_code),
    }
    data.update(changes)
    return data


def placed_number(resp) -> str:  # type: ignore[no-untyped-def]
    assert resp.status_code == 302, page_of(resp)[:2000]
    match = re.fullmatch(r"/cart/orders/(\d+)/pay", urlsplit(resp.headers["Location"]).path)
    assert match, resp.headers["Location"]
    return match.group(1)


def the_order(session, number: str) -> Order:  # type: ignore[no-untyped-def]
    order = session.scalars(select(Order).where(Order.number == number)).one()
    session.refresh(order)
    for sub in order.sub_orders:
        session.refresh(sub)
    session.refresh(order.payment)
    return order


def place(client, market: Market, items: dict[str, int], **changes: str) -> str:  # type: ignore[no-untyped-def]
    for name, quantity in items.items():
        assert add(client, market.product(name), quantity).status_code == 302
    return placed_number(client.post("/cart/checkout", data=checkout_form(client, market, **changes)))


def held(session, order: Order) -> list[StockReservation]:  # type: ignore[no-untyped-def]
    rows = session.scalars(select(StockReservation).where(StockReservation.order_id == order.id)).all()
    for r in rows:
        session.refresh(r)
    return list(rows)


class TestGuestCart:
    def test_a_guest_adds_two_farmers_products_and_logging_in_merges_them(self, client, session, market):
        gold, tea, honey = market.product("梅县金柚"), market.product("英德红茶"), market.product("梅县蜜柚")
        carts.save_cart(session, market.buyer, {honey.id: 4, gold.id: 1})  # from an earlier visit
        assert add(client, gold, 2).status_code == 302
        assert add(client, tea, 1).status_code == 302
        assert guest_cart(client) == {str(gold.id): 2, str(tea.id): 1}
        page = page_of(client.get("/cart/"))
        assert "梅县柚园" in page and "英德茶园" in page
        assert 'class="cart-count">2<' in page
        assert count(session, CartItem, CartItem.user_id == market.buyer.id) == 2

        assert login(client, market.buyer.phone).status_code == 302
        assert carts.saved_cart(session, market.buyer) == {honey.id: 4, gold.id: 2, tea.id: 1}
        assert guest_cart(client) == {}
        page = page_of(client.get("/cart/"))
        assert 'class="cart-count">3<' in page
        assert page.count('class="card cart-parcel"') == 2

    def test_the_cart_shows_each_sellers_parcel_with_its_shipping_and_the_cold_chain(
        self, client, market, gateway
    ):
        add(client, market.product("梅县金柚"), 2)
        add(client, market.product("冰鲜走地鸡"), 1)
        add(client, market.product("英德红茶"), 3)
        page = page_of(client.get("/cart/"))
        meixian, yingde = page.split('class="card cart-parcel"')[1:]
        # 梅县: 2 jin + 1.5 kg chilled = 2.5 kg in the cold chain: 15.00 + 2 × 4.00.
        assert "¥23.00" in meixian and 'class="tag cold"' in meixian
        assert "¥8.00" in yingde and 'class="tag cold"' not in yingde
        assert "¥603.00" in page  # 90 + 98 + 384 goods, 23 + 8 shipping

    @pytest.mark.parametrize("quantity", ["0", "-1", "1000", "abc", "", "1.5", " "])
    def test_a_bad_quantity_is_a_form_error_and_nothing_is_written(self, client, session, market, quantity):
        gold = market.product("梅县金柚")
        resp = add(client, gold, quantity)
        page = page_of(resp)
        assert resp.status_code == 422
        assert 'class="field-error"' in page and 'id="cart-qty"' in page
        assert input_value(page, "quantity") == quantity
        assert guest_cart(client) == {}

        login(client, market.buyer.phone)
        assert add(client, gold, quantity).status_code == 422
        assert count(session, CartItem, CartItem.user_id == market.buyer.id) == 0

    def test_a_product_not_on_sale_cannot_be_added(self, client, market):
        assert add(client, market.product("暂停的柚子")).status_code == 404
        assert add(client, market.product("草稿里的柚子")).status_code == 404
        assert client.post("/cart/add/999999", data={"quantity": "1"}).status_code == 404
        assert guest_cart(client) == {}

    def test_change_a_quantity_keep_a_bad_one_typed_and_remove_a_line(self, client, session, market):
        gold, tea = market.product("梅县金柚"), market.product("英德红茶")
        login(client, market.buyer.phone)
        add(client, gold, 1)
        add(client, tea, 1)
        resp = client.post(f"/cart/items/{gold.id}", data={"quantity": "3"})
        assert resp.status_code == 302
        assert carts.saved_cart(session, market.buyer)[gold.id] == 3

        resp = client.post(f"/cart/items/{gold.id}", data={"quantity": "三"})
        page = page_of(resp)
        assert resp.status_code == 422
        assert re.search(rf'id="qty-{gold.id}"[^>]*value="三"', page)
        assert carts.saved_cart(session, market.buyer)[gold.id] == 3

        assert client.post(f"/cart/items/{gold.id}/remove").status_code == 302
        assert carts.saved_cart(session, market.buyer) == {tea.id: 1}

    def test_a_line_short_of_stock_is_marked_and_blocks_checkout(self, client, session, market, gateway):
        gold = market.product("梅县金柚")
        login(client, market.buyer.phone)
        add(client, gold, 5)
        catalog.set_price_and_stock(session, market.shop.meixian_farmer, gold.id, stock=2)
        page = page_of(client.get("/cart/"))
        assert 'class="cart-line problem"' in page
        assert 'href="/cart/checkout"' not in page
        form = checkout_form(client, market)
        resp = client.post("/cart/checkout", data=form)
        assert resp.status_code == 409
        assert count(session, Order) == 0

    def test_checkout_asks_a_guest_to_log_in_first(self, client, market):
        add(client, market.product("梅县金柚"), 1)
        resp = client.get("/cart/checkout")
        assert resp.status_code == 302
        assert urlsplit(resp.headers["Location"]).path == "/auth/login"
        assert "next=%2Fcart%2Fcheckout" in resp.headers["Location"]


class TestCheckout:
    def test_a_new_address_makes_one_order_with_one_sub_order_per_seller(
        self, client, session, market, gateway
    ):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 2, "冰鲜走地鸡": 1, "英德红茶": 3})
        order = the_order(session, number)
        assert count(session, Order) == 1
        by_seller = {s.seller_id: s for s in order.sub_orders}
        meixian = by_seller[market.shop.meixian_farmer.id]
        yingde = by_seller[market.shop.yingde_farmer.id]
        assert (meixian.items_fen, meixian.shipping_fen) == (2 * 4500 + 9800, 1500 + 2 * 400)
        assert meixian.storage_class.value == "chilled"
        assert (yingde.items_fen, yingde.shipping_fen) == (3 * 12800, 800)
        assert order.total_fen == 57200 + 2300 + 800
        assert order.division_code == market.village_code and order.recipient == "陈小姐"
        assert order.payment.method.value == "card"
        assert {s.status for s in order.sub_orders} == {OrderStatus.PENDING_PAYMENT}
        assert carts.saved_cart(session, market.buyer) == {}
        (address,) = session.scalars(select(Address).where(Address.user_id == market.buyer.id)).all()
        assert address.detail == "幸福路8号"

    def test_the_same_form_sent_twice_places_one_order(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 2)
        add(client, market.product("英德红茶"), 1)
        form = checkout_form(client, market)
        first = placed_number(client.post("/cart/checkout", data=form))
        again = placed_number(client.post("/cart/checkout", data=form))
        assert again == first
        assert count(session, Order) == 1
        assert fresh(session, market.product("梅县金柚")).reserved == 2

    def test_prices_in_the_form_are_ignored(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 2)
        form = checkout_form(
            client, market, total_fen="1", shipping_fen="0", price="0.01", unit_price_fen="1"
        )
        order = the_order(session, placed_number(client.post("/cart/checkout", data=form)))
        assert (order.items_fen, order.shipping_fen, order.total_fen) == (9000, 800, 9800)
        assert order.payment.amount_fen == 9800

    def test_a_goods_sum_other_than_the_one_shown_now_is_refused_and_the_new_one_shown(
        self, client, session, market, gateway
    ):
        """The page carries the goods sum it showed: if the price moved since (a campaign began or
        ended), nothing is placed, the page shows the price now, and confirming again places it."""
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 2)
        form = checkout_form(client, market, items_fen="1")
        resp = client.post("/cart/checkout", data=form)
        assert resp.status_code == 409
        assert count(session, Order) == 0
        again = checkout_form(client, market)
        assert again["items_fen"] == "9000"
        assert the_order(session, placed_number(client.post("/cart/checkout", data=again))).items_fen == 9000

    def test_a_missing_address_part_keeps_what_was_typed_and_places_nothing(
        self, client, session, market, gateway
    ):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 1)
        form = checkout_form(client, market, detail="", recipient="陈小姐", phone="1391234")
        resp = client.post("/cart/checkout", data=form)
        page = page_of(resp)
        assert resp.status_code == 422
        assert input_value(page, "recipient") == "陈小姐"
        assert input_value(page, "phone") == "1391234"
        assert input_value(page, "key") == form["key"]
        assert page.count('class="field-error"') >= 2
        assert count(session, Order) == 0

    def test_only_a_county_is_not_enough_for_a_home_address(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 1)
        form = checkout_form(client, market)
        form.pop("town")
        form.pop("village")
        resp = client.post("/cart/checkout", data=form)
        assert resp.status_code == 422
        assert re.search(r'<fieldset class="picker invalid">', page_of(resp))
        assert count(session, Order) == 0

    def test_the_village_picker_fills_its_lists_without_placing_anything(
        self, client, session, market, gateway
    ):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 1)
        form = checkout_form(client, market, action="pick")
        form.pop("village")
        page = page_of(client.post("/cart/checkout", data=form))
        town = places.picker_selection(market.village_code)["town"]
        assert re.search(rf'<option value="{town}" selected>', page)
        assert f'<option value="{market.village_code}">' in page
        assert count(session, Order) == 0

    def test_pickup_at_a_village_point(self, client, session, market, gateway, village_point):
        point = village_point(MEIXIAN)
        login(client, market.buyer.phone)
        number = place(
            client,
            market,
            {"梅县金柚": 2},
            delivery="pickup",
            pickup_node_id=str(point.id),
            pickup_recipient="陈小姐",
            pickup_phone="13912345678",
            recipient="",
            detail="",
        )
        order = the_order(session, number)
        assert order.pickup_node_id == point.id and order.delivery_method.value == "pickup"
        assert order.shipping_fen == 300  # ambient parcel collected at a point

    def test_pickup_without_a_point_or_contact_marks_those_fields(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        add(client, market.product("梅县金柚"), 1)
        form = checkout_form(client, market, delivery="pickup", pickup_recipient="", pickup_phone="")
        page = page_of(client.post("/cart/checkout", data=form))
        assert 'class="pickup-only invalid"' in page
        form["pickup_node_id"] = "999999"
        resp = client.post("/cart/checkout", data=form)
        assert resp.status_code == 422
        assert count(session, Order) == 0

    def test_a_pre_sale_cannot_be_paid_by_wallet(self, client, session, market, gateway):
        from domain import ProductStatus

        gold = market.product("梅县金柚")
        gold.presale = True
        assert gold.status == ProductStatus.ACTIVE
        session.commit()
        login(client, market.buyer.phone)
        add(client, gold, 1)
        resp = client.post("/cart/checkout", data=checkout_form(client, market, payment_method="wechat_pay"))
        page = page_of(resp)
        assert resp.status_code == 422
        assert re.search(r'<fieldset class="choices pay-methods invalid">', page)
        assert count(session, Order) == 0


class TestPayPage:
    def test_someone_elses_order_is_not_found(self, client, session, market, gateway, make_user):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 1})
        client.post("/auth/logout")
        other = make_user(name="别的买家")
        login(client, other.phone)
        for url in (f"/cart/orders/{number}/pay", f"/cart/orders/{number}/return"):
            assert client.get(url).status_code == 404
        assert client.post(f"/orders/{number}/cancel").status_code == 404
        resp = client.post(f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 404
        assert the_order(session, number).payment.status == PaymentStatus.CREATING
        assert client.get("/cart/orders/20260101000000000/pay").status_code == 404

    def test_card_page_loads_stripe_js_says_it_needs_javascript_and_pays(
        self, client, session, market, gateway, app, localstripe
    ):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 2, "英德红茶": 1})
        resp = client.get(f"/cart/orders/{number}/pay")
        page = page_of(resp)
        assert resp.status_code == 200
        assert f'<script src="{app.config["STRIPE_JS_URL"]}"' in page
        assert "<noscript>" in page and 'id="card-pay"' in page
        csp = resp.headers["Content-Security-Policy"]
        assert f"script-src 'self' {localstripe.url};" in csp
        assert f"connect-src 'self' {localstripe.url}" in csp and f"frame-src 'self' {localstripe.url}" in csp
        assert localstripe.url not in client.get("/cart/").headers["Content-Security-Policy"]

        # What pay.js posts once Stripe.js has tokenised the card.
        resp = client.post(f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 302
        assert urlsplit(resp.headers["Location"]).path == f"/cart/orders/{number}/return"
        resp = client.get(resp.headers["Location"])
        assert resp.status_code == 200 and 'data-state="paid"' in page_of(resp)
        order = the_order(session, number)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert [s.status for s in order.sub_orders] == [OrderStatus.PAID, OrderStatus.PAID]
        assert {r.status for r in held(session, order)} == {ReservationStatus.COMMITTED}
        page = page_of(client.get(f"/cart/orders/{number}/pay"))
        assert 'data-state="paid"' in page and "<script" not in page.split('<main class="page">')[1]

    def test_a_declined_card_says_so_and_the_order_stays_payable(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 1})
        resp = client.post(
            f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_chargeDeclined"}
        )
        page = page_of(resp)
        assert resp.status_code == 402
        assert 'class="flash flash-error"' in page and 'data-state="card"' in page
        order = the_order(session, number)
        assert order.payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED)
        assert {r.status for r in held(session, order)} == {ReservationStatus.HELD}
        resp = client.post(f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 302
        assert the_order(session, number).payment.status == PaymentStatus.SUCCEEDED

    def test_a_card_needing_the_banks_check_gets_the_client_secret(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 1})
        resp = client.post(
            f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_authenticationRequired"}
        )
        assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path.endswith("/pay")
        page = page_of(client.get(resp.headers["Location"]))
        order = the_order(session, number)
        assert 'data-state="authenticate"' in page
        assert f'data-secret="{order.payment.client_secret}"' in page

    def test_wechat_pay_shows_a_qr_code_and_the_page_sees_the_payment(
        self, client, session, market, gateway, localstripe
    ):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 2, "英德红茶": 1}, payment_method="wechat_pay")
        resp = client.get(f"/cart/orders/{number}/pay")
        page = page_of(resp)
        assert resp.status_code == 200
        assert 'data-state="wechat"' in page
        assert '<figure class="pay-qr"><svg' in page.replace("\n", "").replace("  ", "")
        assert '<meta http-equiv="refresh" content="5">' in page
        order = the_order(session, number)
        assert order.payment.status == PaymentStatus.REQUIRES_ACTION

        # Reloading before the buyer scans changes nothing.
        assert 'data-state="wechat"' in page_of(client.get(f"/cart/orders/{number}/pay"))
        localstripe.wallet_paid(order.payment.intent_id)
        page = page_of(client.get(f"/cart/orders/{number}/pay"))
        assert 'data-state="paid"' in page and 'http-equiv="refresh"' not in page
        order = the_order(session, number)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert [s.status for s in order.sub_orders] == [OrderStatus.PAID, OrderStatus.PAID]

    def test_alipay_offers_the_redirect(self, client, session, market, gateway):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 1}, payment_method="alipay")
        page = page_of(client.get(f"/cart/orders/{number}/pay"))
        order = the_order(session, number)
        url = order.payment.next_action["alipay_handle_redirect"]["url"]
        assert 'data-state="alipay"' in page and f'href="{htmllib.escape(url)}"' in page

    def test_the_gateway_down_says_so_and_the_order_stays_payable(
        self, client, session, market, app, monkeypatch, gateway_down, localstripe
    ):
        client.post("/lang", data={"lang": "en", "next": "/"})
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 2}, payment_method="wechat_pay")
        resp = client.get(f"/cart/orders/{number}/pay")
        page = page_of(resp)
        assert resp.status_code == 503
        assert "temporarily unavailable" in page and 'data-state="wallet_retry"' in page
        resp = client.post(f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 503
        order = the_order(session, number)
        assert order.payment.status == PaymentStatus.CREATING
        assert {s.status for s in order.sub_orders} == {OrderStatus.PENDING_PAYMENT}
        assert {r.status for r in held(session, order)} == {ReservationStatus.HELD}
        assert fresh(session, market.product("梅县金柚")).reserved == 2

        # The gateway is back: the same page now shows the QR code.
        with StripeGateway(localstripe.url, localstripe.secret_key, backoff=0.01) as gw:
            monkeypatch.setitem(app.extensions, "payment_gateway", gw)
            page = page_of(client.get(f"/cart/orders/{number}/pay"))
        assert 'data-state="wechat"' in page

    def test_the_buyer_cancels_an_unpaid_order_and_the_stock_goes_back(
        self, client, session, market, gateway
    ):
        login(client, market.buyer.phone)
        number = place(client, market, {"梅县金柚": 2})
        assert fresh(session, market.product("梅县金柚")).reserved == 2
        # The pay page's cancel form posts to the one cancel endpoint and comes back here.
        form = re.search(
            r'<form class="cancel-order" method="post" action="([^"]+)">(.*?)</form>',
            page_of(client.get(f"/cart/orders/{number}/pay")),
            re.S,
        )
        assert form is not None and form.group(1) == f"/orders/{number}/cancel"
        resp = client.post(form.group(1), data={"next": input_value(form.group(2), "next")})
        assert resp.status_code == 302
        assert urlsplit(resp.headers["Location"]).path == f"/cart/orders/{number}/pay"
        page = page_of(client.get(resp.headers["Location"]))
        assert 'data-state="cancelled"' in page
        order = the_order(session, number)
        assert {s.status for s in order.sub_orders} == {OrderStatus.CANCELLED}
        assert fresh(session, market.product("梅县金柚")).reserved == 0
        # Paying a cancelled order is refused with a message, not a 500.
        resp = client.post(f"/cart/orders/{number}/pay/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 409
