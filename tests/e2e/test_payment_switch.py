"""Paying again, or another way, on the same order over HTTP (issue 10, item 5), against the real
localstripe: the pay page after a declined WeChat payment says so in Chinese and offers bank card,
WeChat Pay and Alipay; the JSON API does the same with POST /api/v1/orders/{number}/payment
{method} and an Idempotency-Key; paid orders and bad input are refused with nothing written."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from domain import (
    AttemptStatus,
    LedgerTransaction,
    Order,
    OrderStatus,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
    ReservationStatus,
    StockReservation,
)
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.conftest import count

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)


def page_of(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def fresh(session, order: Order) -> Order:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(Order, order.id)
    assert found is not None
    return found


def switch_forms(page: str) -> dict[str, str]:
    """The pay page's "pay this way" buttons: {method: the form's idempotency key}."""
    forms = re.findall(r'<form method="post" action="(/cart/orders/\d+/pay/method)">(.*?)</form>', page, re.S)
    found = {}
    for _action, body in forms:
        key = re.search(r'name="key" value="([^"]+)"', body)
        method = re.search(r'name="method" value="([^"]+)"', body)
        assert key and method, body
        found[method.group(1)] = htmllib.unescape(key.group(1))
    return found


def attempt_count(session, order: Order) -> int:  # type: ignore[no-untyped-def]
    return count(session, PaymentAttempt, PaymentAttempt.payment_id == order.payment.id)


def paid_postings(session, order: Order) -> int:  # type: ignore[no-untyped-def]
    return count(
        session,
        LedgerTransaction,
        LedgerTransaction.order_id == order.id,
        LedgerTransaction.kind == "sub_order_paid",
    )


def held(session, order: Order) -> set[ReservationStatus]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return set(
        session.scalars(select(StockReservation.status).where(StockReservation.order_id == order.id)).all()
    )


class TestPayPage:
    def test_a_declined_wechat_payment_is_paid_by_card_from_the_pay_page(
        self, session, market, gateway, localstripe, as_user
    ):
        client = as_user(market.buyer)
        order = market.place({"英德红茶": 1, "梅县金柚": 1}, SETTINGS, method="wechat_pay")
        pay_url = f"/cart/orders/{order.number}/pay"
        page = page_of(client.get(pay_url))
        assert 'data-state="wechat"' in page
        # While the code is shown, the buyer may already choose another way.
        assert set(switch_forms(page)) == {"card", "alipay"}

        localstripe.wallet_failed(fresh(session, order).payment.intent_id)
        resp = client.get(pay_url)
        page = page_of(resp)
        assert resp.status_code == 200
        assert 'data-state="wallet_retry"' in page
        assert "微信支付没有付款成功" in page  # the decline, said in Chinese
        forms = switch_forms(page)
        assert set(forms) == {"card", "wechat_pay", "alipay"}
        assert "银行卡" in page and "支付宝" in page
        assert held(session, order) == {ReservationStatus.HELD}

        resp = client.post(f"{pay_url}/method", data={"method": "card", "key": forms["card"]})
        assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == pay_url
        page = page_of(client.get(pay_url))
        assert 'data-state="card"' in page and 'id="card-pay"' in page
        assert held(session, order) == {ReservationStatus.HELD}

        resp = client.post(f"{pay_url}/card", data={"payment_method": "pm_card_visa"})
        assert resp.status_code == 302
        order = fresh(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert order.payment_method == PaymentMethod.CARD
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        assert held(session, order) == {ReservationStatus.COMMITTED}
        assert paid_postings(session, order) == len(order.sub_orders)
        assert 'data-state="paid"' in page_of(client.get(pay_url))
        assert switch_forms(page_of(client.get(pay_url))) == {}

    def test_a_double_submitted_switch_form_switches_once(self, session, market, gateway, as_user):
        client = as_user(market.buyer)
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        pay_url = f"/cart/orders/{order.number}/pay"
        forms = switch_forms(page_of(client.get(pay_url)))
        assert set(forms) == {"wechat_pay", "alipay"}
        for _tap in range(2):
            resp = client.post(f"{pay_url}/method", data={"method": "wechat_pay", "key": forms["wechat_pay"]})
            assert resp.status_code == 302
        order = fresh(session, order)
        assert order.payment.method == PaymentMethod.WECHAT_PAY
        # The card chosen at checkout never reached the gateway: it is superseded by WeChat Pay,
        # one attempt however many taps.
        tries = sorted(order.payment.attempts, key=lambda a: a.number)
        assert [(a.method, a.status) for a in tries] == [
            (PaymentMethod.CARD, AttemptStatus.SUPERSEDED),
            (PaymentMethod.WECHAT_PAY, AttemptStatus.REQUIRES_ACTION),
        ]
        assert 'data-state="wechat"' in page_of(client.get(pay_url))

    def test_a_paid_order_refuses_another_way_to_pay(self, session, market, gateway, as_user):
        client = as_user(market.buyer)
        order = market.pay(market.place({"梅县金柚": 1}, SETTINGS), gateway)
        before = attempt_count(session, order)
        resp = client.post(
            f"/cart/orders/{order.number}/pay/method", data={"method": "alipay", "key": "paid-already-1"}
        )
        assert resp.status_code == 409
        page = page_of(resp)
        assert 'class="flash flash-error"' in page and "已经付款" in page
        order = fresh(session, order)
        assert order.payment.status == PaymentStatus.SUCCEEDED and order.payment.method == PaymentMethod.CARD
        assert attempt_count(session, order) == before

    def test_someone_elses_order_is_not_found(self, session, market, gateway, as_user, make_user):
        from domain import Role

        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        other = as_user(make_user(Role.BUYER, name="别人"))
        before = attempt_count(session, order)  # the one checkout opened
        resp = other.post(
            f"/cart/orders/{order.number}/pay/method", data={"method": "card", "key": "not-mine-01"}
        )
        assert resp.status_code == 404
        assert attempt_count(session, order) == before == 1


class TestPaymentApi:
    def url(self, order: Order) -> str:
        return f"/api/v1/orders/{order.number}/payment"

    def test_a_failed_wallet_is_paid_another_way_by_api(
        self, client, session, market, gateway, localstripe, bearer
    ):
        headers = bearer(market.buyer)
        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        data = client.post(self.url(order), json={}, headers=headers).get_json()
        assert data["next_action"]["type"] == "wechat_pay_display_qr_code"
        localstripe.wallet_failed(fresh(session, order).payment.intent_id)

        resp = client.post(
            self.url(order),
            json={"method": "alipay"},
            headers={**headers, "Idempotency-Key": "api-alipay-01"},
        )
        assert resp.status_code == 200, resp.get_json()
        data = resp.get_json()
        assert data["method"] == "alipay" and data["status"] == "requires_action"
        assert data["next_action"]["type"] == "alipay_handle_redirect"
        assert data["amount_fen"] == order.total_fen
        assert [(a["method"], a["status"]) for a in data["attempts"]] == [
            ("wechat_pay", "failed"),
            ("alipay", "requires_action"),
        ]
        # The same request again: the same attempt, nothing new at the gateway.
        again = client.post(
            self.url(order),
            json={"method": "alipay"},
            headers={**headers, "Idempotency-Key": "api-alipay-01"},
        ).get_json()
        assert again["next_action"] == data["next_action"] and len(again["attempts"]) == 2

        # Card in one request: switch and pay.
        resp = client.post(
            self.url(order),
            json={"method": "card", "payment_method": "pm_card_visa", "idempotency_key": "api-card-0001"},
            headers=headers,
        )
        assert resp.status_code == 200, resp.get_json()
        data = resp.get_json()
        assert data["status"] == "succeeded" and data["method"] == "card"
        assert data["amount_received_fen"] == order.total_fen
        order = fresh(session, order)
        assert paid_postings(session, order) == len(order.sub_orders)
        assert [a.status for a in order.payment.attempts] == [
            AttemptStatus.FAILED,
            AttemptStatus.SUPERSEDED,
            AttemptStatus.SUCCEEDED,
        ]

        # Paid: another way is refused, nothing written.
        resp = client.post(
            self.url(order),
            json={"method": "wechat_pay"},
            headers={**headers, "Idempotency-Key": "api-after-paid"},
        )
        assert resp.status_code == 409
        assert resp.get_json()["code"] == "payment_closed" and resp.get_json()["message"]
        assert attempt_count(session, order) == 3

    @pytest.mark.parametrize(
        ("body", "key"),
        [
            ({"method": "paypal"}, "api-bad-method"),
            ({"method": "cash"}, "api-cash-0001"),
            ({"method": "wechat_pay"}, None),  # no idempotency key
            ({"method": "wechat_pay", "idempotency_key": "short"}, None),
            ({"method": "alipay", "payment_method": "pm_card_visa"}, "api-mixed-0001"),
        ],
    )
    def test_bad_input_is_a_422_and_nothing_written(
        self, client, session, market, gateway, bearer, body, key
    ):
        headers = bearer(market.buyer)
        order = market.place({"梅县金柚": 1}, SETTINGS, method="card")
        if key:
            headers = {**headers, "Idempotency-Key": key}
        before = attempt_count(session, order)  # the one checkout opened
        resp = client.post(self.url(order), json=body, headers=headers)
        assert resp.status_code == 422, resp.get_json()
        assert resp.get_json()["message"]
        order = fresh(session, order)
        assert order.payment.method == PaymentMethod.CARD and order.payment.intent_id is None
        assert attempt_count(session, order) == before == 1

    def test_a_cancelled_order_is_a_409(self, client, session, market, gateway, bearer):
        headers = bearer(market.buyer)
        order = market.place({"梅县金柚": 1}, SETTINGS, method="wechat_pay")
        payments.ensure_intent(session, gateway, order)
        assert client.post(f"/api/v1/orders/{order.number}/cancel", headers=headers).status_code == 200
        before = attempt_count(session, order)
        resp = client.post(
            self.url(order), json={"method": "card"}, headers={**headers, "Idempotency-Key": "api-cancelled"}
        )
        assert resp.status_code == 409 and resp.get_json()["code"] == "payment_closed"
        assert attempt_count(session, order) == before
        assert fresh(session, order).payment.status == PaymentStatus.CANCELED

    def test_the_openapi_document_lists_the_switch_and_its_errors(self, client):
        doc = client.get("/api/openapi.json").get_json()
        post = doc["paths"]["/api/v1/orders/{order_number}/payment"]["post"]
        assert {"402", "404", "409", "422", "503"} <= set(post["responses"])
        assert any(p.get("name") == "Idempotency-Key" for p in post.get("parameters", []))
