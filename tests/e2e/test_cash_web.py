"""Issue 11 (cash slice) over HTTP: the agent's cash page and API, county staff's remittances
page and API; refusals in Chinese, nothing written twice."""

from __future__ import annotations

import pytest

from domain import CashRemittance, PaymentStatus, RemittanceStatus, Role
from services import cash, ledger
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import YINGDE, count


@pytest.fixture()
def cash_order(session, market, point, agent, make_user):  # type: ignore[no-untyped-def]
    villager = make_user(Role.BUYER, name="陈阿婆")
    data = CheckoutInput(
        items={market.product("梅县蜜柚").id: 2},
        idempotency_key=checkout.new_idempotency_key(),
        payment_method="cash",
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈阿婆", phone="13912340000"),
    )
    settings = CheckoutSettings(free_shipping_from_fen=0)
    return checkout.place_order(session, villager, data, settings, placed_by=agent).order


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


class TestAgentApi:
    def test_cash_now_then_remit_and_confirm(
        self, client, session, bearer, agent, staff, cash_order, make_user
    ):
        url = f"/api/v1/agent/orders/{cash_order.number}/cash"
        headers = {**bearer(agent), "Idempotency-Key": "cash-api-key-0001"}
        for _ in range(2):
            resp = client.post(url, json={}, headers=headers)
            assert resp.status_code == 200, resp.get_json()
            assert resp.get_json()["payment_status"] == PaymentStatus.SUCCEEDED.value
        total = cash_order.total_fen
        assert ledger.balance(session, ledger.cash_held_code(agent.id)) == total

        over = client.post(
            "/api/v1/agent/remittances",
            json={"amount_fen": total + 1, "idempotency_key": "remit-api-key-0001"},
            headers=bearer(agent),
        )
        assert over.status_code == 409
        assert over.get_json()["code"] == "cash_exceeds_held"
        assert "最多可上缴" in over.get_json()["message"]
        assert count(session, CashRemittance) == 0

        declared = client.post(
            "/api/v1/agent/remittances",
            json={"amount_fen": total, "idempotency_key": "remit-api-key-0002"},
            headers=bearer(agent),
        )
        assert declared.status_code == 200
        rid = declared.get_json()["id"]

        stranger = bearer(make_user(Role.COUNTY_STAFF, county_code=YINGDE))
        assert (
            client.post(
                f"/api/v1/county/remittances/{rid}/confirm", json={"counted_fen": 1}, headers=stranger
            ).status_code
            == 404
        )
        listed = client.get("/api/v1/county/remittances?to_confirm=true", headers=bearer(staff)).get_json()
        assert [r["id"] for r in listed] == [rid]
        done = client.post(
            f"/api/v1/county/remittances/{rid}/confirm",
            json={"counted_fen": total - 100},
            headers=bearer(staff),
        )
        assert done.status_code == 200
        assert (done.get_json()["status"], done.get_json()["discrepancy_fen"]) == ("confirmed", 100)
        mine = client.get("/api/v1/agent/cash", headers=bearer(agent)).get_json()
        assert mine["held_fen"] == 100 and mine["remittances"][0]["discrepancy_fen"] == 100


class TestPages:
    def test_the_agent_takes_cash_and_declares_on_the_page(self, session, as_user, agent, staff, cash_order):
        page = as_user(agent)
        html = page.get("/agent/cash").get_data(as_text=True)
        assert "手上现金" in html and cash_order.number in html
        resp = page.post(f"/agent/cash/orders/{cash_order.number}", data={"key": "cash-page-key-0001"})
        assert resp.status_code == 302
        again = page.post(f"/agent/cash/orders/{cash_order.number}", data={"key": "cash-page-key-0001"})
        assert again.status_code == 302
        assert ledger.balance(session, ledger.cash_held_code(agent.id)) == cash_order.total_fen

        too_much = page.post(
            "/agent/cash/remittances", data={"key": "remit-page-key-0001", "amount": "99999"}
        )
        assert too_much.status_code == 409
        assert "超过了您手上的现金" in too_much.get_data(as_text=True)
        assert "最多可上缴" in too_much.get_data(as_text=True)
        ok = page.post(
            "/agent/cash/remittances",
            data={"key": "remit-page-key-0002", "amount": f"{cash_order.total_fen / 100:.2f}"},
        )
        assert ok.status_code == 302

        county = as_user(staff)
        listing = county.get("/county/remittances").get_data(as_text=True)
        assert "待清点确认" in listing
        (remittance,) = cash.county_remittances(session, staff, to_confirm=True)
        short = county.post(f"/county/remittances/{remittance.id}/confirm", data={"counted": "1.00"})
        assert short.status_code == 302
        session.refresh(remittance)
        assert (
            remittance.status == RemittanceStatus.CONFIRMED
            and remittance.discrepancy_fen == cash_order.total_fen - 100
        )
        assert "差额" in page.get("/agent/cash").get_data(as_text=True)

    def test_a_buyer_has_no_cash_pages(self, as_user, make_user):
        page = as_user(make_user(Role.BUYER))
        assert page.get("/agent/cash").status_code == 403
        assert page.get("/county/remittances").status_code == 403


class TestBadInput:
    """Each cash route's malformed input: a 422 with a message, nothing written."""

    @pytest.mark.parametrize(
        "body",
        [
            {"amount_fen": 0, "idempotency_key": "bad-remit-0001"},
            {"amount_fen": -500, "idempotency_key": "bad-remit-0002"},
            {"amount_fen": "五百", "idempotency_key": "bad-remit-0003"},
            {"amount_fen": 100, "idempotency_key": "短"},
            {"amount_fen": 100},  # no key at all
            {"idempotency_key": "bad-remit-0004"},
        ],
    )
    def test_a_declaration_that_cannot_be_read(self, client, session, bearer, agent, cash_order, body):
        cash.take_cash(session, agent, cash_order.number, "bad-input-cash-01")
        resp = client.post("/api/v1/agent/remittances", json=body, headers=bearer(agent))
        assert resp.status_code == 422, resp.get_json()
        assert resp.get_json()["message"]
        assert count(session, CashRemittance) == 0

    def test_taking_cash_without_a_key_is_refused(self, client, session, bearer, agent, cash_order):
        resp = client.post(f"/api/v1/agent/orders/{cash_order.number}/cash", json={}, headers=bearer(agent))
        assert resp.status_code == 422, resp.get_json()
        session.expire_all()
        assert cash_order.payment.status == PaymentStatus.AWAITING_CASH

    @pytest.mark.parametrize("counted", [-1, "一百", None, 10**12])
    def test_a_count_that_cannot_be_read(self, client, session, bearer, agent, staff, cash_order, counted):
        cash.take_cash(session, agent, cash_order.number, "bad-input-cash-02")
        remittance = cash.declare_remittance(session, agent, cash_order.total_fen, "bad-input-remit-1")
        resp = client.post(
            f"/api/v1/county/remittances/{remittance.id}/confirm",
            json={"counted_fen": counted},
            headers=bearer(staff),
        )
        assert resp.status_code in (409, 422), resp.get_json()  # 10**12: more than declared
        assert resp.get_json()["message"]
        session.expire_all()
        assert session.get(CashRemittance, remittance.id).status == RemittanceStatus.DECLARED

    def test_a_list_filter_that_cannot_be_read(self, client, bearer, staff):
        resp = client.get("/api/v1/county/remittances?to_confirm=maybe", headers=bearer(staff))
        assert resp.status_code == 422

    def test_an_unknown_order_or_remittance_is_not_found(self, client, bearer, agent, staff):
        headers = {**bearer(agent), "Idempotency-Key": "bad-input-cash-03"}
        assert (
            client.post("/api/v1/agent/orders/202601010000000000/cash", json={}, headers=headers).status_code
            == 404
        )
        resp = client.post(
            "/api/v1/county/remittances/999999/confirm", json={"counted_fen": 1}, headers=bearer(staff)
        )
        assert resp.status_code == 404
