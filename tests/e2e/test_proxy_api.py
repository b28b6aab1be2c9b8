"""Proxy orders over the API (issue 11, items 3 and 10): the villager's cart, placing paid by QR
(through the real localstripe), cash now or on credit, the orders I placed, switching the QR,
cancelling; county staff's credit limits; every bad input a 4xx with nothing written."""

from __future__ import annotations

import pytest

from domain import AgentCreditLimit, Order, PaymentStatus, Role
from services import cash, ledger, villagers
from services.villagers import VillagerInput
from tests.conftest import YINGDE, count

FERTILIZER = "复合肥"


@pytest.fixture()
def villager(session, agent, point):  # type: ignore[no-untyped-def]
    return villagers.register_villager(
        session,
        agent,
        VillagerInput(name="陈阿婆", village_code=point.division_code),
        idempotency_key="api-v1",
    )


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def test_qr_order_paid_then_listed(client, session, market, agent, villager, bearer, localstripe):
    headers = bearer(agent)
    product = market.product(FERTILIZER).id
    catalog = client.get("/api/v1/agent/proxy/catalog?q=复合肥", headers=headers).get_json()
    assert product in [p["id"] for p in catalog["items"]]
    url = f"/api/v1/agent/proxy/villagers/{villager.id}/cart"
    cart = client.put(url, json={"items": [{"product_id": product, "quantity": 2}]}, headers=headers)
    assert cart.status_code == 200 and cart.get_json()["total_fen"] > 0
    assert client.get(url, headers=headers).get_json()["lines"][0]["quantity"] == 2

    place = f"/api/v1/agent/proxy/villagers/{villager.id}/orders"
    first = client.post(
        place, json={"payment_method": "wechat_pay"}, headers={**headers, "Idempotency-Key": "api-qr-key-001"}
    )
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["state"] == "wechat" and body["qr_text"] and body["villager_id"] == villager.id
    again = client.post(
        place, json={"payment_method": "wechat_pay", "idempotency_key": "api-qr-key-001"}, headers=headers
    )
    assert again.status_code == 200 and again.get_json()["number"] == body["number"]
    assert count(session, Order) == 1

    number = body["number"]
    switched = client.post(
        f"/api/v1/agent/proxy/orders/{number}/payment",
        json={"method": "alipay", "idempotency_key": "api-switch-001"},
        headers=headers,
    )
    assert switched.status_code == 200 and switched.get_json()["state"] == "alipay"
    order = session.get(Order, session.query(Order.id).filter_by(number=number).scalar())
    session.refresh(order.payment)
    localstripe.wallet_paid(order.payment.intent_id)
    followed = client.get(f"/api/v1/agent/proxy/orders/{number}", headers=headers).get_json()
    assert followed["state"] == "paid" and followed["payment_status"] == "succeeded"
    listed = client.get("/api/v1/agent/proxy/orders?status=paid", headers=headers).get_json()
    assert [o["number"] for o in listed] == [number]
    assert (
        client.get(
            f"/api/v1/agent/proxy/orders?villager_id={villager.id}&status=unpaid", headers=headers
        ).get_json()
        == []
    )


def test_cash_now_and_credit_then_collected(client, session, market, agent, villager, staff, bearer):
    headers = bearer(agent)
    product = market.product(FERTILIZER).id
    place = f"/api/v1/agent/proxy/villagers/{villager.id}/orders"
    items = [{"product_id": product, "quantity": 1}]
    paid = client.post(
        place,
        json={"payment_method": "cash", "items": items, "idempotency_key": "api-cash-key-01"},
        headers=headers,
    )
    assert paid.status_code == 201 and paid.get_json()["payment_status"] == "succeeded"
    total = paid.get_json()["total_fen"]
    assert ledger.balance(session, ledger.cash_held_code(agent.id)) == total

    over = client.post(
        place,
        json={"payment_method": "credit", "items": items, "idempotency_key": "api-credit-key-1"},
        headers=headers,
    )
    assert over.status_code == 409 and over.get_json()["code"] == "credit_exceeded"
    assert count(session, Order) == 1

    limit_url = f"/api/v1/county/credit/{agent.id}"
    for bad in (-1, 10**12, "100"):
        assert (
            client.put(
                limit_url,
                json={"limit_fen": bad, "idempotency_key": "api-limit-key-01"},
                headers=bearer(staff),
            ).status_code
            == 422
        )
    assert (
        client.put(limit_url, json={"limit_fen": 100_000}, headers=bearer(staff)).status_code == 422
    )  # no key
    assert (
        client.put(
            limit_url, json={"limit_fen": 100_000, "idempotency_key": "api-limit-key-01"}, headers=headers
        ).status_code
        == 403
    )
    assert count(session, AgentCreditLimit) == 0
    done = client.put(
        limit_url, json={"limit_fen": 100_000, "idempotency_key": "api-limit-key-01"}, headers=bearer(staff)
    )
    assert done.status_code == 200 and done.get_json()["available_fen"] == 100_000
    assert (
        client.put(
            limit_url, json={"limit_fen": 5, "idempotency_key": "api-limit-key-01"}, headers=bearer(staff)
        ).status_code
        == 409
    )
    assert [c["agent_id"] for c in client.get("/api/v1/county/credit", headers=bearer(staff)).get_json()] == [
        agent.id
    ]

    on_credit = client.post(
        place,
        json={"payment_method": "credit", "items": items, "idempotency_key": "api-credit-key-2"},
        headers=headers,
    )
    assert on_credit.status_code == 201 and on_credit.get_json()["state"] == "on_credit"
    mine = client.get("/api/v1/agent/proxy/credit", headers=headers).get_json()
    assert (mine["limit_fen"], mine["used_fen"]) == (100_000, total)
    order = session.query(Order).filter_by(number=on_credit.get_json()["number"]).one()
    cash.collect_on_pickup(session, agent, order)
    session.commit()
    assert order.payment.status == PaymentStatus.SUCCEEDED
    assert client.get("/api/v1/agent/proxy/credit", headers=headers).get_json()["used_fen"] == 0
    assert (
        client.get(f"/api/v1/agent/proxy/orders/{order.number}", headers=headers).get_json()["state"]
        == "collected"
    )


def test_bad_input_is_a_4xx_and_writes_nothing(
    client, session, market, agent, villager, bearer, make_user, village_point
):
    headers = bearer(agent)
    product = market.product(FERTILIZER).id
    elsewhere = village_point(YINGDE)
    their_agent = make_user(Role.AGENT, node_id=elsewhere.id)
    theirs = villagers.register_villager(
        session,
        their_agent,
        VillagerInput(name="黄婆婆", village_code=elsewhere.division_code),
        idempotency_key="api-v2",
    )
    items = [{"product_id": product, "quantity": 1}]
    base = "/api/v1/agent/proxy/villagers"
    assert (
        client.post(
            f"{base}/{theirs.id}/orders",
            json={"payment_method": "cash", "items": items, "idempotency_key": "api-bad-key-001"},
            headers=headers,
        ).status_code
        == 403
    )
    assert client.get(f"{base}/{theirs.id}/cart", headers=headers).status_code == 403
    assert client.get(f"{base}/99999999999/cart", headers=headers).status_code == 404
    assert (
        client.post(
            f"{base}/{villager.id}/orders",
            json={"payment_method": "card", "items": items, "idempotency_key": "api-bad-key-002"},
            headers=headers,
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{base}/{villager.id}/orders", json={"payment_method": "cash", "items": items}, headers=headers
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{base}/{villager.id}/orders",
            json={"payment_method": "cash", "idempotency_key": "api-bad-key-003"},
            headers=headers,
        ).status_code
        == 422
    )  # empty cart
    assert (
        client.put(
            f"{base}/{villager.id}/cart",
            json={"items": [{"product_id": product, "quantity": 0}]},
            headers=headers,
        ).status_code
        == 422
    )
    assert client.get("/api/v1/agent/proxy/orders?status=weird", headers=headers).status_code == 422
    assert client.get("/api/v1/agent/proxy/orders/2026000000000000", headers=headers).status_code == 404
    assert (
        client.post(
            "/api/v1/agent/proxy/orders/2026000000000000/payment",
            json={"method": "alipay", "idempotency_key": "api-bad-key-004"},
            headers=headers,
        ).status_code
        == 404
    )
    assert (
        client.put(
            "/api/v1/county/credit/99999999999",
            json={"limit_fen": 1, "idempotency_key": "api-bad-key-005"},
            headers=bearer(make_user(Role.COUNTY_STAFF, county_code=YINGDE)),
        ).status_code
        == 404
    )
    assert (
        client.put(
            f"/api/v1/county/credit/{agent.id}",
            json={"limit_fen": 1, "idempotency_key": "api-bad-key-006"},
            headers=bearer(make_user(Role.COUNTY_STAFF, county_code=YINGDE)),
        ).status_code
        == 403
    )
    assert client.get("/api/v1/agent/proxy/credit", headers=bearer(market.buyer)).status_code == 403
    assert client.get("/api/v1/agent/proxy/catalog", headers={}).status_code == 401
    assert count(session, Order) == 0 and count(session, AgentCreditLimit) == 0
    doc = client.get("/api/openapi.json").get_json()
    assert "/api/v1/agent/proxy/villagers/{villager_id}/orders" in doc["paths"]
    assert "/api/v1/county/credit/{agent_id}" in doc["paths"]
