"""The orders API over HTTP against the real localstripe: the saved cart and its quote; placing an
order (server-priced, idempotent, nothing written on bad input); paying by card, declines and the
gateway down; pre-sale authorisation captured at hand-in; sellers', staff's and buyers' moves,
refunds; someone else's order not found; every endpoint in the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    CartItem,
    Order,
    OrderStatus,
    PaymentStatus,
    Product,
    Refund,
    Role,
    SubOrder,
    clock,
)
from services.payments.gateway import GatewayUnavailable
from tests.conftest import MEIXIAN, count
from tests.factories import Market, receiver_of

S = OrderStatus


@pytest.fixture()
def lychee(market) -> Product:  # type: ignore[no-untyped-def]
    """A pre-sale: paid (authorised) now, shipped from the harvest."""
    return market.shop.add(
        "预售妃子笑荔枝",
        "lychee-longan",
        3000,
        stock=100,
        presale=True,
        ships_from=clock.today() + timedelta(days=60),
    )


def order_body(market: Market, items: dict[str, int], key: str = "order-key-0001", **extra) -> dict:  # type: ignore[no-untyped-def]
    return market.api_body(items, key, **extra)


def assert_error(resp, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    data = resp.get_json()
    assert isinstance(data["message"], str) and data["message"]
    if code is not None:
        assert data["code"] == code, data
    return data


def orders(session) -> int:  # type: ignore[no-untyped-def]
    return count(session, Order)


def stock(session, product: Product) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(Product, product.id)
    assert found is not None
    return found.stock


def place(client, market, headers, items=None, **extra):  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/orders", json=order_body(market, items or {"梅县金柚": 2}, **extra), headers=headers
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def pay(client, number: str, headers, card: str | None = "pm_card_visa"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/orders/{number}/payment", json={"payment_method": card} if card else {}, headers=headers
    )


class TestCart:
    def test_put_then_get_the_priced_cart(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        pomelo, tea = market.product("梅县金柚"), market.product("英德红茶")
        items = [{"product_id": pomelo.id, "quantity": 2}, {"product_id": tea.id, "quantity": 1}]
        resp = client.put("/api/v1/cart", json={"items": items}, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        data = client.get("/api/v1/cart", headers=headers).get_json()
        assert data["items"] == items
        groups = {g["seller_id"]: g for g in data["groups"]}
        assert set(groups) == {market.shop.meixian_farmer.id, market.shop.yingde_farmer.id}
        meixian = groups[market.shop.meixian_farmer.id]
        assert meixian["items_fen"] == 2 * pomelo.price_fen
        assert meixian["lines"][0] == {
            **meixian["lines"][0],
            "product_id": pomelo.id,
            "quantity": 2,
            "unit_price_fen": pomelo.price_fen,
            "line_fen": 2 * pomelo.price_fen,
        }
        assert data["items_fen"] == 2 * pomelo.price_fen + tea.price_fen
        assert data["total_fen"] == data["items_fen"] + data["shipping_fen"]
        pickup = client.get("/api/v1/cart?delivery=pickup", headers=headers).get_json()
        assert pickup["delivery"] == "pickup" and pickup["items_fen"] == data["items_fen"]
        # Absolute: the same PUT again changes nothing; an empty list empties it.
        assert client.put("/api/v1/cart", json={"items": items}, headers=headers).get_json()["items"] == items
        assert client.put("/api/v1/cart", json={"items": []}, headers=headers).get_json()["items"] == []
        assert count(session, CartItem) == 0

    def test_a_sold_out_line_is_listed_as_a_problem(self, client, market, bearer):
        headers = bearer(market.buyer)
        sold_out = market.product("售罄的荔枝干")
        resp = client.put(
            "/api/v1/cart", json={"items": [{"product_id": sold_out.id, "quantity": 1}]}, headers=headers
        )
        data = resp.get_json()
        assert data["groups"] == [] and data["problems"][0]["product_id"] == sold_out.id
        assert data["problems"][0]["problem"]

    @pytest.mark.parametrize(
        ("item", "status"),
        [
            ({"quantity": 0}, 422),
            ({"quantity": -1}, 422),
            ({"quantity": 1000}, 422),
            ({"quantity": "2"}, 422),
            ({"quantity": 1.5}, 422),
            ({"product_id": 999_999}, 404),
            ({"price_fen": 1}, 422),
        ],
    )
    def test_bad_items_change_nothing(self, client, session, market, bearer, item, status):
        headers = bearer(market.buyer)
        pomelo = market.product("梅县金柚")
        client.put(
            "/api/v1/cart", json={"items": [{"product_id": pomelo.id, "quantity": 1}]}, headers=headers
        )
        resp = client.put(
            "/api/v1/cart",
            json={"items": [{"product_id": pomelo.id, "quantity": 3, **item}]},
            headers=headers,
        )
        assert_error(resp, status)
        assert client.get("/api/v1/cart", headers=headers).get_json()["items"] == [
            {"product_id": pomelo.id, "quantity": 1}
        ]

    def test_the_same_product_twice_is_refused(self, client, market, bearer):
        pomelo = market.product("梅县金柚")
        twice = [{"product_id": pomelo.id, "quantity": 1}, {"product_id": pomelo.id, "quantity": 2}]
        resp = client.put("/api/v1/cart", json={"items": twice}, headers=bearer(market.buyer))
        assert "items" in assert_error(resp, 422, "validation_error")["errors"]

    def test_no_token_no_cart(self, client):
        assert_error(client.get("/api/v1/cart"), 401, "unauthorized")
        assert_error(client.put("/api/v1/cart", json={"items": []}), 401, "unauthorized")


class TestPlaceAndPay:
    def test_place_then_pay_by_card(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        pomelo = market.product("梅县金柚")
        before = stock(session, pomelo)
        data = place(client, market, headers)
        assert data["payment_status"] in ("creating", "requires_payment_method")
        assert data["items_fen"] == 2 * pomelo.price_fen
        assert data["total_fen"] == data["items_fen"] + data["shipping_fen"]
        assert [s["status"] for s in data["sub_orders"]] == ["pending_payment"]
        assert data["recipient_phone"] == "13912345678"
        assert stock(session, pomelo) == before - 2  # held until paid

        intent = pay(client, data["number"], headers, card=None)
        assert intent.status_code == 200, intent.get_json()
        assert intent.get_json()["status"] == "requires_payment_method"
        assert intent.get_json()["client_secret"] and intent.get_json()["amount_fen"] == data["total_fen"]

        paid = pay(client, data["number"], headers)
        assert paid.status_code == 200, paid.get_json()
        assert paid.get_json()["status"] == "succeeded"
        assert paid.get_json()["amount_received_fen"] == data["total_fen"]
        got = client.get(f"/api/v1/orders/{data['number']}", headers=headers).get_json()
        assert got["payment_status"] == "succeeded"
        assert [s["status"] for s in got["sub_orders"]] == ["paid"]
        # A repeated tap neither fails nor charges twice.
        again = pay(client, data["number"], headers)
        assert again.status_code == 200 and again.get_json()["amount_received_fen"] == data["total_fen"]
        listed = client.get("/api/v1/orders", headers=headers).get_json()
        assert [o["number"] for o in listed] == [data["number"]]

    def test_pickup_at_a_village_point(self, client, session, market, bearer, village_point):
        point = village_point(MEIXIAN)
        body = order_body(
            market,
            {"梅县金柚": 1},
            delivery="pickup",
            address=None,
            pickup_node_id=point.id,
            pickup_contact={"recipient": "陈小姐", "phone": "13912345678"},
        )
        resp = client.post("/api/v1/orders", json=body, headers=bearer(market.buyer))
        assert resp.status_code == 201, resp.get_json()
        data = resp.get_json()
        assert data["delivery"] == "pickup" and data["pickup_node_id"] == point.id
        assert data["pickup_node_name"] == point.name

    def test_the_same_key_places_one_order(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        first = place(client, market, headers, key="same-key-123")
        again = client.post(
            "/api/v1/orders", json=order_body(market, {"梅县金柚": 2}, key="same-key-123"), headers=headers
        )
        assert again.status_code == 200
        assert again.get_json()["number"] == first["number"]
        assert orders(session) == 1

    def test_the_idempotency_key_header_when_the_body_has_none(self, client, session, market, bearer):
        headers = {**bearer(market.buyer), "Idempotency-Key": "header-key-42"}
        body = order_body(market, {"梅县金柚": 1})
        del body["idempotency_key"]
        first = client.post("/api/v1/orders", json=body, headers=headers)
        second = client.post("/api/v1/orders", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.get_json()["number"] == second.get_json()["number"]
        assert orders(session) == 1

    def test_a_key_reused_for_other_items_is_a_conflict(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        place(client, market, headers, key="reused-key-1")
        other = client.post(
            "/api/v1/orders", json=order_body(market, {"梅县蜜柚": 1}, key="reused-key-1"), headers=headers
        )
        assert_error(other, 409, "conflict")
        assert orders(session) == 1

    @pytest.mark.parametrize(
        "tamper",
        [
            {"items": "price"},  # a price inside an item
            {"total_fen": 1},
            {"items_fen": 1},
            {"shipping_fen": 0},
        ],
    )
    def test_prices_in_the_request_are_refused(self, client, session, market, bearer, tamper):
        body = order_body(market, {"梅县金柚": 2})
        if tamper == {"items": "price"}:
            body["items"][0]["unit_price_fen"] = 1
        else:
            body.update(tamper)
        resp = client.post("/api/v1/orders", json=body, headers=bearer(market.buyer))
        data = assert_error(resp, 422, "validation_error")
        assert data["errors"]
        assert orders(session) == 0

    @pytest.mark.parametrize(
        ("quantity", "product", "status"),
        [
            (0, "梅县金柚", 422),
            (-1, "梅县金柚", 422),
            (11, "梅县金柚", 409),  # 10 in stock
            (1000, "梅县金柚", 422),
            (1, None, 422),  # no such product
            (1, 10**40, 422),  # not even a database integer
            (1, "暂停的柚子", 409),
            (1, "售罄的荔枝干", 409),
        ],
    )
    def test_bad_lines_write_nothing(self, client, session, market, bearer, quantity, product, status):
        pomelo = market.product("梅县金柚")
        before = stock(session, pomelo)
        pid = product if isinstance(product, int) else market.product(product).id if product else 999_999
        body = order_body(market, {"梅县金柚": 1})
        body["items"] = [{"product_id": pid, "quantity": quantity}]
        assert_error(client.post("/api/v1/orders", json=body, headers=bearer(market.buyer)), status)
        assert orders(session) == 0
        assert stock(session, pomelo) == before

    @pytest.mark.parametrize(
        "change",
        [
            {"payment_method": "bitcoin"},
            {"payment_method": "cash"},
            {"delivery": "drone"},
            {"address": None},
            {"address": {"recipient": "陈", "phone": "12345", "division_code": "441403", "detail": "x"}},
            {"idempotency_key": "short"},
            {"items": []},
            {"items": None},
            {"address": None, "address_id": 10**40},
            {"delivery": "pickup", "pickup_node_id": 10**40},
        ],
    )
    def test_bad_fields_are_422_and_write_nothing(self, client, session, market, bearer, change):
        body = order_body(market, {"梅县金柚": 1})
        body.update(change)
        assert_error(client.post("/api/v1/orders", json=body, headers=bearer(market.buyer)), 422)
        assert orders(session) == 0

    @pytest.mark.parametrize("payload", ["{not json", "[1, 2]", '{"items": '])
    def test_malformed_json_is_a_400_json_error(self, client, session, market, bearer, payload):
        headers = {**bearer(market.buyer), "Content-Type": "application/json"}
        resp = client.post("/api/v1/orders", data=payload, headers=headers)
        assert 400 <= resp.status_code < 500
        data = resp.get_json()
        assert data["code"] in ("bad_request", "validation_error") and data["message"]
        if payload.startswith("{not"):
            assert resp.status_code == 400
        assert orders(session) == 0

    def test_no_token_no_order(self, client, session, market):
        assert_error(
            client.post("/api/v1/orders", json=order_body(market, {"梅县金柚": 1})), 401, "unauthorized"
        )
        assert orders(session) == 0


class TestDeclinesAndOutages:
    def test_a_declined_card_leaves_the_order_payable(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        data = place(client, market, headers)
        resp = pay(client, data["number"], headers, card="pm_card_chargeDeclined")
        assert_error(resp, 402, "card_declined")
        got = client.get(f"/api/v1/orders/{data['number']}", headers=headers).get_json()
        assert [s["status"] for s in got["sub_orders"]] == ["pending_payment"]
        assert got["payment_status"] not in ("succeeded", "canceled")
        paid = pay(client, data["number"], headers)
        assert paid.status_code == 200, paid.get_json()
        assert paid.get_json()["status"] == "succeeded"
        got = client.get(f"/api/v1/orders/{data['number']}", headers=headers).get_json()
        assert [s["status"] for s in got["sub_orders"]] == ["paid"]

    def test_not_a_payment_method_id_is_422(self, client, market, bearer):
        headers = bearer(market.buyer)
        data = place(client, market, headers)
        assert_error(pay(client, data["number"], headers, card="4242424242424242"), 422, "validation_error")

    def test_the_gateway_down_is_503_and_the_order_stays_payable(
        self, client, session, market, bearer, gateway, monkeypatch
    ):
        headers = bearer(market.buyer)

        def down(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise GatewayUnavailable()

        with monkeypatch.context() as m:
            m.setattr(gateway, "create_payment_intent", down)
            m.setattr(gateway, "find_payment_intent", lambda **kwargs: None)
            # The order is placed (stock held) even though its payment could not start.
            data = place(client, market, headers)
            assert data["payment"]["status"] == "creating"
            assert_error(pay(client, data["number"], headers), 503, "payment_gateway_unavailable")
        got = client.get(f"/api/v1/orders/{data['number']}", headers=headers).get_json()
        assert [s["status"] for s in got["sub_orders"]] == ["pending_payment"]
        assert pay(client, data["number"], headers).get_json()["status"] == "succeeded"


def hand_in_by_api(client, session, bearer, number: str) -> None:  # type: ignore[no-untyped-def]
    """The intake through the API by whoever receives the seller's goods, weighed as ordered."""
    receiver = bearer(receiver_of(session, sub_row(session, number)))
    lines = client.get(f"/api/v1/agent/intake/sub-orders/{number}", headers=receiver).get_json()["lines"]
    body = {
        "lines": [
            {"line_id": x["id"], "weight_g": x["net_weight_g"] * x["quantity"], "grade": "first"}
            for x in lines
        ],
        "idempotency_key": f"intake-{number}",
    }
    resp = client.post(f"/api/v1/agent/intake/sub-orders/{number}", json=body, headers=receiver)
    assert resp.status_code == 200, resp.get_json()


def sub_row(session, number: str) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(SubOrder).where(SubOrder.number == number))  # type: ignore[return-value]


class TestPresale:
    def test_authorised_now_captured_at_hand_in(self, client, session, market, bearer, lychee, admin):
        buyer, seller = bearer(market.buyer), bearer(market.shop.meixian_farmer)
        data = place(client, market, buyer, items={"预售妃子笑荔枝": 2})
        assert data["presale"] is True
        authorised = pay(client, data["number"], buyer)
        assert authorised.get_json()["status"] == "requires_capture"
        assert authorised.get_json()["amount_received_fen"] == 0
        (sub,) = client.get(f"/api/v1/orders/{data['number']}", headers=buyer).get_json()["sub_orders"]
        assert sub["status"] == "paid"

        number = sub["number"]
        resp = client.post(f"/api/v1/sub-orders/{number}/transition", json={"to": "accepted"}, headers=seller)
        assert resp.status_code == 200 and resp.get_json()["status"] == "accepted"
        assert client.post(f"/api/v1/sub-orders/{number}/ready", headers=seller).get_json()["ready_at"]
        # The seller never hands in; the hand-in is the intake the receiver records (weighed as ordered).
        assert client.post(f"/api/v1/sub-orders/{number}/hand-in", headers=seller).status_code == 404
        receiver = bearer(receiver_of(session, sub_row(session, number)))
        form = client.get(f"/api/v1/agent/intake/sub-orders/{number}", headers=receiver)
        lines = [
            {"line_id": line["id"], "weight_g": line["net_weight_g"] * line["quantity"], "grade": "first"}
            for line in form.get_json()["lines"]
        ]
        body = {"lines": lines, "idempotency_key": "presale-intake-1"}
        assert_error(client.post(f"/api/v1/agent/intake/sub-orders/{number}", json=body, headers=seller), 403)
        handed = client.post(f"/api/v1/agent/intake/sub-orders/{number}", json=body, headers=receiver)
        assert handed.status_code == 200, handed.get_json()
        assert handed.get_json()["sub_order_status"] == "handed_in"
        got = client.get(f"/api/v1/orders/{data['number']}", headers=buyer).get_json()
        assert got["payment_status"] == "succeeded"
        session.expire_all()
        payment = session.get(
            Order, session.scalar(select(Order.id).where(Order.number == data["number"]))
        ).payment
        assert payment.status == PaymentStatus.SUCCEEDED and payment.amount_received_fen == data["total_fen"]

    def test_declining_a_pre_sale_releases_the_authorisation(self, client, session, market, bearer, lychee):
        buyer, seller = bearer(market.buyer), bearer(market.shop.meixian_farmer)
        data = place(client, market, buyer, items={"预售妃子笑荔枝": 1})
        pay(client, data["number"], buyer)
        number = data["sub_orders"][0]["number"]
        resp = client.post(
            f"/api/v1/sub-orders/{number}/decline", json={"reason": "荔枝减产"}, headers=seller
        )
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["status"] == "cancelled"
        got = client.get(f"/api/v1/orders/{data['number']}", headers=buyer).get_json()
        assert got["payment_status"] == "canceled"
        assert count(session, Refund) == 0  # nothing was taken, nothing to give back


class TestSubOrders:
    @pytest.fixture()
    def paid(self, client, market, bearer) -> dict:  # type: ignore[no-untyped-def]
        headers = bearer(market.buyer)
        data = place(client, market, headers)
        assert pay(client, data["number"], headers).get_json()["status"] == "succeeded"
        return data["sub_orders"][0]

    def test_the_seller_lists_and_moves_with_the_allowed_moves_shown(self, client, market, bearer, paid):
        seller = bearer(market.shop.meixian_farmer)
        listed = client.get("/api/v1/sub-orders?status=paid", headers=seller).get_json()
        assert [s["number"] for s in listed] == [paid["number"]]
        assert listed[0]["moves"] == ["accepted"]
        assert listed[0]["recipient_phone"] == "139****5678"  # the seller sees it masked
        assert client.get("/api/v1/sub-orders?status=accepted", headers=seller).get_json() == []
        assert_error(client.get("/api/v1/sub-orders?status=bogus", headers=seller), 422, "validation_error")
        assert_error(client.get(f"/api/v1/sub-orders?seller_id={10**40}", headers=seller), 422)
        assert_error(client.get("/api/v1/sub-orders?role=king", headers=seller), 422)
        detail = client.get(f"/api/v1/sub-orders/{paid['number']}", headers=seller).get_json()
        assert [e["to_status"] for e in detail["events"]] == ["pending_payment", "paid"]

    def test_illegal_transitions_are_409_and_change_nothing(self, client, session, market, bearer, paid):
        seller, buyer = bearer(market.shop.meixian_farmer), bearer(market.buyer)
        url = f"/api/v1/sub-orders/{paid['number']}/transition"
        assert_error(client.post(url, json={"to": "in_transit"}, headers=seller), 409, "illegal_transition")
        assert_error(client.post(url, json={"to": "accepted"}, headers=buyer), 403, "forbidden")
        assert_error(client.post(url, json={"to": "refunded"}, headers=seller), 409, "illegal_transition")
        assert_error(client.post(url, json={"to": "teleported"}, headers=seller), 422, "validation_error")
        assert_error(
            client.post(url, json={"to": "accepted", "x": 1}, headers=seller), 422, "validation_error"
        )
        # The seller never hands in: the intake is the receiving agent's or county staff's.
        intake = {
            "lines": [{"line_id": 1, "weight_g": 1, "grade": "first"}],
            "idempotency_key": "seller-in-01",
        }
        assert_error(
            client.post(f"/api/v1/agent/intake/sub-orders/{paid['number']}", json=intake, headers=seller), 403
        )
        session.expire_all()
        assert session.scalar(select(SubOrder.status).where(SubOrder.number == paid["number"])) == S.PAID

    def test_the_whole_journey_and_a_staff_refund_once_per_key(
        self, client, session, market, bearer, paid, admin
    ):
        seller, buyer, staff = bearer(market.shop.meixian_farmer), bearer(market.buyer), bearer(admin)
        number = paid["number"]
        url = f"/api/v1/sub-orders/{number}/transition"
        assert client.post(url, json={"to": "accepted"}, headers=seller).status_code == 200
        hand_in_by_api(client, session, bearer, number)
        staff_list = client.get("/api/v1/sub-orders?role=staff&status=handed_in", headers=staff).get_json()
        assert [s["number"] for s in staff_list] == [number] and staff_list[0]["moves"] == ["in_transit"]
        assert client.post(url, json={"to": "in_transit", "note": "冷链车"}, headers=staff).status_code == 200
        assert client.post(url, json={"to": "out_for_delivery"}, headers=staff).status_code == 200
        done = client.post(url, json={"to": "completed"}, headers=buyer)
        assert done.status_code == 200 and done.get_json()["status"] == "completed"

        asked = client.post(
            f"/api/v1/sub-orders/{number}/refund-request", json={"reason": "坏了一个"}, headers=buyer
        )
        assert asked.status_code == 200 and asked.get_json()["status"] == "refund_requested"
        refund = {"amount_fen": 500, "reason": "坏果", "idempotency_key": "refund-key-001"}
        first = client.post(f"/api/v1/sub-orders/{number}/refund", json=refund, headers=staff)
        assert first.status_code == 200, first.get_json()
        assert first.get_json()["status"] == "completed" and first.get_json()["refunded_fen"] == 500
        second = client.post(f"/api/v1/sub-orders/{number}/refund", json=refund, headers=staff)
        assert second.get_json()["refunded_fen"] == 500
        assert count(session, Refund) == 1
        # More than is left: 422; the buyer cannot refund themselves.
        too_much = {"amount_fen": paid["total_fen"], "reason": "x", "idempotency_key": "refund-key-002"}
        assert_error(client.post(f"/api/v1/sub-orders/{number}/refund", json=too_much, headers=staff), 422)
        mine = {"reason": "x", "idempotency_key": "refund-key-003"}
        assert_error(client.post(f"/api/v1/sub-orders/{number}/refund", json=mine, headers=buyer), 403)
        rest = client.post(
            f"/api/v1/sub-orders/{number}/refund",
            json={"reason": "全退"},
            headers={**staff, "Idempotency-Key": "refund-key-004"},
        )
        assert (
            rest.get_json()["status"] == "refunded" and rest.get_json()["refunded_fen"] == paid["total_fen"]
        )
        order = client.get(f"/api/v1/orders/{paid['order_number']}", headers=buyer).get_json()
        assert order["refunded_fen"] == paid["total_fen"]

    def test_a_staff_refund_of_units_gives_back_what_they_were_paid(
        self, client, session, market, bearer, paid, admin
    ):
        staff, buyer = bearer(admin), bearer(market.buyer)
        number = paid["number"]
        (line,) = paid["lines"]
        assert line["quantity"] == 2 and line["discounts"] == []
        url = f"/api/v1/sub-orders/{number}/refund"
        other = place(client, market, buyer, items={"梅县蜜柚": 1}, key="second-order-2")
        pay(client, other["number"], buyer)
        other_line = other["sub_orders"][0]["lines"][0]["id"]

        def body(units, **extra):  # type: ignore[no-untyped-def]
            return {"units": units, "reason": "坏果", **extra}

        bad = [
            body([{"line_id": line["id"], "quantity": 3}]),  # more than bought
            body([{"line_id": other_line, "quantity": 1}]),  # another sub-order's line
            body([{"line_id": line["id"], "quantity": 1}, {"line_id": line["id"], "quantity": 1}]),
            body([{"line_id": line["id"], "quantity": 0}]),
            body([{"line_id": line["id"], "quantity": "1"}]),
            body([{"line_id": "x", "quantity": 1}]),
            body([{"line_id": 2**70, "quantity": 1}]),
            body([{"quantity": 1}]),
            body([]),
            body("all"),
            body([1]),
            body([{"line_id": line["id"], "quantity": 1}], amount_fen=1),  # not what the unit was paid
        ]
        for n, sent in enumerate(bad):
            resp = client.post(url, json=sent, headers={**staff, "Idempotency-Key": f"bad-units-{n:03}"})
            data = assert_error(resp, 422)
            assert data["errors"], data
        assert count(session, Refund) == 0

        one = body([{"line_id": line["id"], "quantity": 1}], idempotency_key="unit-refund-01")
        first = client.post(url, json=one, headers=staff)
        assert first.status_code == 200, first.get_json()
        assert first.get_json()["refunded_fen"] == line["paid_fen"] // 2
        assert first.get_json()["status"] == "paid"
        assert client.post(url, json=one, headers=staff).get_json()["refunded_fen"] == line["paid_fen"] // 2
        assert count(session, Refund) == 1
        refund = session.scalars(select(Refund)).one()
        assert refund.units == {str(line["id"]): 1}
        # One unit is left, not two.
        again = body([{"line_id": line["id"], "quantity": 2}], idempotency_key="unit-refund-02")
        assert_error(client.post(url, json=again, headers=staff), 422)
        assert count(session, Refund) == 1

    def test_a_refund_key_of_another_sub_order_is_refused(self, client, session, market, bearer, paid, admin):
        staff, buyer = bearer(admin), bearer(market.buyer)
        other = place(client, market, buyer, items={"梅县蜜柚": 1}, key="second-order-1")
        pay(client, other["number"], buyer)
        body = {"amount_fen": 100, "reason": "破损", "idempotency_key": "shared-key-01"}
        assert (
            client.post(f"/api/v1/sub-orders/{paid['number']}/refund", json=body, headers=staff).status_code
            == 200
        )
        resp = client.post(
            f"/api/v1/sub-orders/{other['sub_orders'][0]['number']}/refund", json=body, headers=staff
        )
        assert_error(resp, 409)
        assert count(session, Refund) == 1

    def test_seller_declines_a_paid_order_the_money_goes_back(self, client, session, market, bearer, paid):
        seller = bearer(market.shop.meixian_farmer)
        url = f"/api/v1/sub-orders/{paid['number']}/decline"
        assert_error(client.post(url, json={}, headers=seller), 422, "validation_error")
        resp = client.post(url, json={"reason": "缺货"}, headers=seller)
        assert resp.status_code == 200
        assert (
            resp.get_json()["status"] == "refunded" and resp.get_json()["refunded_fen"] == paid["total_fen"]
        )
        assert resp.get_json()["decline_reason"] == "缺货"


class TestNotYours:
    def test_another_buyers_order_is_not_found(self, client, session, market, bearer, make_user):
        data = place(client, market, bearer(market.buyer))
        stranger = bearer(make_user(Role.BUYER, name="路人"))
        number, sub = data["number"], data["sub_orders"][0]["number"]
        assert_error(client.get(f"/api/v1/orders/{number}", headers=stranger), 404, "not_found")
        assert_error(pay(client, number, stranger), 404, "not_found")
        assert_error(client.post(f"/api/v1/orders/{number}/cancel", headers=stranger), 404, "not_found")
        assert_error(client.get(f"/api/v1/sub-orders/{sub}", headers=stranger), 404, "not_found")
        assert_error(
            client.post(f"/api/v1/sub-orders/{sub}/transition", json={"to": "completed"}, headers=stranger),
            404,
        )
        assert client.get("/api/v1/orders", headers=stranger).get_json() == []
        other_seller = bearer(market.shop.yingde_farmer)
        assert_error(client.get(f"/api/v1/sub-orders/{sub}", headers=other_seller), 404)

    def test_staff_may_look_but_not_pay(self, client, market, bearer, admin):
        data = place(client, market, bearer(market.buyer))
        staff = bearer(admin)
        got = client.get(f"/api/v1/orders/{data['number']}", headers=staff).get_json()
        assert got["recipient_phone"] == "139****5678"
        assert_error(pay(client, data["number"], staff), 404)

    def test_the_buyer_cancels_unpaid(self, client, session, market, bearer):
        headers = bearer(market.buyer)
        pomelo = market.product("梅县金柚")
        before = stock(session, pomelo)
        data = place(client, market, headers)
        resp = client.post(f"/api/v1/orders/{data['number']}/cancel", headers=headers)
        assert resp.status_code == 200 and resp.get_json()["sub_orders"][0]["status"] == "cancelled"
        assert stock(session, pomelo) == before
        assert_error(pay(client, data["number"], headers), 409, "payment_closed")


class TestOpenApi:
    def test_every_orders_endpoint_is_documented(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        expected = {
            "/api/v1/cart": {"get", "put"},
            "/api/v1/orders": {"get", "post"},
            "/api/v1/orders/{order_number}": {"get"},
            "/api/v1/orders/{order_number}/payment": {"post"},
            "/api/v1/orders/{order_number}/cancel": {"post"},
            "/api/v1/sub-orders": {"get"},
            "/api/v1/sub-orders/{sub_number}": {"get"},
            "/api/v1/sub-orders/{sub_number}/transition": {"post"},
            "/api/v1/sub-orders/{sub_number}/decline": {"post"},
            "/api/v1/sub-orders/{sub_number}/ready": {"post"},
            "/api/v1/agent/intake/sub-orders/{sub_number}": {"get", "post"},  # the hand-in
            "/api/v1/sub-orders/{sub_number}/refund-request": {"post"},
            "/api/v1/sub-orders/{sub_number}/refund": {"post"},
        }
        for path, methods in expected.items():
            assert path in paths, path
            assert methods <= set(paths[path]), (path, set(paths[path]))
        post = paths["/api/v1/orders"]["post"]
        assert {"200", "201", "401", "409", "422"} <= set(post["responses"])
        assert "402" in paths["/api/v1/orders/{order_number}/payment"]["post"]["responses"]

    def test_money_fields_end_in_fen(self, client):
        schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
        order = schemas["Order"]["properties"]
        assert {"items_fen", "shipping_fen", "total_fen", "refunded_fen"} <= set(order)
        assert not any(k.startswith("price") or k in ("total", "amount") for k in order)
