"""The order pages over HTTP against the real localstripe: buyers see and pay, cancel, confirm
receipt and ask for refunds; sellers (and agents for their farmers) accept, pack, hand in and
decline; staff move parcels along and refund all or part. Illegal moves are refused with the
reason and change nothing; someone else's order is not found.

Assertions look at status codes, data attributes and the database; English words only after
switching the page language to English."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from domain import (
    Order,
    OrderEvent,
    OrderStatus,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    Role,
    SubOrder,
)
from services.orders import manage
from tests.conftest import MEIXIAN, count
from tests.factories import consent, receive

S = OrderStatus


@pytest.fixture()
def county_staff(make_user):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=MEIXIAN, name="梅县中心")


@pytest.fixture()
def paid(market, checkout_settings, gateway) -> SubOrder:  # type: ignore[no-untyped-def]
    """A paid order of two 梅县金柚 from the Meixian farmer: its one sub-order."""
    order = market.pay(market.place({"梅县金柚": 2}, checkout_settings), gateway)
    (sub,) = order.sub_orders
    assert sub.status == S.PAID
    return sub


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def status_of(session, sub: SubOrder) -> OrderStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found.status


def moves_on(page: str, sub_number: str) -> set[str]:
    """The generic move buttons offered on a page (all of them: pages show one sub-order's)."""
    del sub_number
    return set(re.findall(r'data-move="([a-z_]+)"', page))


def move(client, sub: SubOrder, target: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(f"/orders/sub/{sub.number}/move", data={"target": target, **extra})


def drive(session, market, sub: SubOrder, staff, gateway, *targets: OrderStatus) -> None:  # type: ignore[no-untyped-def]
    """Move a sub-order along through the services (set-up for later steps)."""
    for target in targets:
        if target == S.HANDED_IN:
            receive(session, gateway, sub)  # the intake at the point, weighed as ordered
        elif target == S.ACCEPTED:
            manage.move(session, market.shop.meixian_farmer, sub.number, target)
        elif target == S.COMPLETED:
            manage.move(session, market.buyer, sub.number, target)
        else:
            manage.move(session, staff, sub.number, target)


class TestBuyerPages:
    def test_my_orders_newest_first_with_a_status_chip_per_seller(
        self, session, market, checkout_settings, gateway, as_user
    ):
        first = market.place({"梅县金柚": 1}, checkout_settings)
        second = market.pay(market.place({"梅县蜜柚": 1, "英德红茶": 1}, checkout_settings), gateway)
        page = html(as_user(market.buyer).get("/orders/"))
        assert page.index(second.number) < page.index(first.number)
        chips = re.findall(
            r'data-sub="([^"]+)">[^<]*<span class="tag order-status[^"]*" data-status="(\w+)"', page
        )
        assert sorted(chips) == sorted(
            [(s.number, "paid") for s in second.sub_orders]
            + [(first.sub_orders[0].number, "pending_payment")]
        )

    def test_every_status_has_its_own_words(self, app):
        from marketplace.formatting import order_status_label

        with app.test_request_context("/"):
            labels = {s: order_status_label(s) for s in OrderStatus}
        assert all(label and label != s.value for s, label in labels.items())
        assert len(set(labels.values())) == len(OrderStatus)

    def test_the_detail_shows_address_lines_amounts_and_history(
        self, session, market, paid, as_user, county_staff
    ):
        order = paid.order
        page = html(as_user(market.buyer).get(f"/orders/{order.number}"))
        assert "幸福路8号" in page and "陈小姐" in page and "13912345678" in page  # the owner's own number
        assert f'data-product-id="{market.product("梅县金柚").id}"' in page
        for fen in (order.items_fen, order.shipping_fen, order.total_fen):
            assert f'data-fen="{fen}"' in page
        assert re.search(r'<li data-status="paid">', page)  # the history
        assert "<script" not in page  # works without JavaScript
        # Staff see the order too, with the phone masked.
        staff_page = html(as_user(county_staff).get(f"/orders/{order.number}"))
        assert "139****5678" in staff_page and "13912345678" not in staff_page

    def test_an_unpaid_order_offers_pay_and_cancel_and_cancelling_puts_the_stock_back(
        self, session, market, checkout_settings, as_user
    ):
        order = market.place({"梅县金柚": 3}, checkout_settings)
        pomelo = market.product("梅县金柚")
        session.refresh(pomelo)
        stock = pomelo.stock
        client = as_user(market.buyer)
        page = html(client.get(f"/orders/{order.number}"))
        assert f'href="/cart/orders/{order.number}/pay"' in page
        assert 'data-action="cancel"' in page
        resp = client.post(f"/orders/{order.number}/cancel")
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/orders/{order.number}")
        session.expire_all()
        assert status_of(session, order.sub_orders[0]) == S.CANCELLED
        assert session.get(Product, pomelo.id).stock == stock + 3
        page = html(client.get(f"/orders/{order.number}"))
        assert 'data-action="pay"' not in page and 'data-action="cancel"' not in page
        # Again: nothing changes, no error.
        assert client.post(f"/orders/{order.number}/cancel").status_code == 302

    def test_a_paid_order_cannot_be_cancelled_unpaid(self, session, market, paid, as_user):
        client = as_user(market.buyer, english=True)
        resp = client.post(f"/orders/{paid.order.number}/cancel")
        assert resp.status_code == 409
        assert "This order cannot be changed that way now." in html(resp)
        assert status_of(session, paid) == S.PAID

    def test_staff_are_offered_the_cancel_but_not_the_pay_button_of_an_unpaid_order(
        self, session, market, checkout_settings, as_user, county_staff
    ):
        order = market.place({"梅县金柚": 1}, checkout_settings)
        page = html(as_user(county_staff).get(f"/orders/{order.number}"))
        assert 'data-action="cancel"' in page and 'data-action="pay"' not in page
        # Only the buyer pays: the pay page is not found for staff.
        assert as_user(county_staff).get(f"/cart/orders/{order.number}/pay").status_code == 404

    def test_a_refused_cancel_from_the_pay_page_goes_back_there_with_the_reason(
        self, session, market, paid, as_user
    ):
        client = as_user(market.buyer, english=True)
        pay_page = f"/cart/orders/{paid.order.number}/pay"
        resp = client.post(f"/orders/{paid.order.number}/cancel", data={"next": pay_page})
        assert resp.status_code == 302 and resp.headers["Location"].endswith(pay_page)
        assert "This order cannot be changed that way now." in html(client.get(pay_page))
        assert status_of(session, paid) == S.PAID
        # One cancel endpoint: the pay page's old one is gone.
        assert client.post(f"/cart/orders/{paid.order.number}/cancel").status_code == 404

    def test_buyer_cancels_a_paid_sub_order_before_acceptance_and_gets_the_money_back(
        self, session, market, paid, as_user
    ):
        client = as_user(market.buyer)
        page = html(client.get(f"/orders/{paid.order.number}"))
        assert 'data-action="refund-request"' in page
        resp = client.post(f"/orders/sub/{paid.number}/refund-request", data={"reason": "买错了"})
        assert resp.status_code == 302
        assert status_of(session, paid) == S.REFUNDED
        assert session.get(SubOrder, paid.id).refunded_fen == paid.total_fen


class TestFulfilment:
    def test_seller_accepts_packs_hands_in_staff_move_it_buyer_confirms_receipt(
        self, session, market, paid, as_user, county_staff, point
    ):
        farmer = as_user(market.shop.meixian_farmer)
        page = html(farmer.get("/orders/sell"))
        assert f'data-sub="{paid.number}" data-status="paid"' in page
        assert moves_on(page, paid.number) == {"accepted"}
        assert 'data-action="decline"' in page
        resp = move(farmer, paid, "accepted", next=f"/orders/sell#s{paid.number}")
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/orders/sell#s{paid.number}")
        assert status_of(session, paid) == S.ACCEPTED

        page = html(farmer.get("/orders/sell"))
        assert 'data-action="ready"' in page and 'data-action="hand-in"' not in page
        assert farmer.post(f"/orders/sub/{paid.number}/ready").status_code == 302
        session.expire_all()
        assert session.get(SubOrder, paid.id).ready_at is not None
        assert 'data-action="ready"' not in html(farmer.get("/orders/sell"))
        # The seller brings the parcel; the receiving staff record the intake, never the seller.
        assert farmer.post(f"/orders/sub/{paid.number}/hand-in").status_code in (404, 405)
        line = paid.lines[0]
        weighed = {f"weight-{line.id}": "2", f"grade-{line.id}": "first", f"quantity-{line.id}": "2"}
        refused = farmer.post(f"/agent/intake/{paid.number}", data={**weighed, "key": "k" * 20})
        assert refused.status_code == 403
        assert status_of(session, paid) == S.ACCEPTED

        staff = as_user(county_staff)
        page = html(staff.get("/orders/staff"))
        assert f'data-sub="{paid.number}"' in page
        assert 'data-action="hand-in"' in html(staff.get(f"/orders/sub/{paid.number}"))
        assert f'name="weight-{line.id}"' in html(staff.get(f"/agent/intake/{paid.number}"))
        resp = staff.post(f"/agent/intake/{paid.number}", data={**weighed, "key": "k" * 20})
        assert resp.status_code == 302  # 2 斤 ordered, 2 斤 weighed: nothing to give back
        assert status_of(session, paid) == S.HANDED_IN
        assert session.get(SubOrder, paid.id).refunded_fen == 0
        assert moves_on(html(staff.get(f"/orders/sub/{paid.number}")), paid.number) == {"in_transit"}
        assert move(staff, paid, "in_transit", note="梅县→广州 冷链车").status_code == 302
        assert moves_on(html(staff.get(f"/orders/sub/{paid.number}")), paid.number) == {
            "ready_for_pickup",
            "out_for_delivery",
        }
        assert move(staff, paid, "ready_for_pickup").status_code == 302
        assert status_of(session, paid) == S.READY_FOR_PICKUP

        buyer = as_user(market.buyer)
        page = html(buyer.get(f"/orders/{paid.order.number}"))
        assert moves_on(page, paid.number) == {"completed"}
        assert move(buyer, paid, "completed").status_code == 302
        assert status_of(session, paid) == S.COMPLETED

        history = [
            e.to_status
            for e in session.scalars(
                select(OrderEvent).where(OrderEvent.sub_order_id == paid.id).order_by(OrderEvent.id)
            )
        ]
        assert history == [
            S.PENDING_PAYMENT,
            S.PAID,
            S.ACCEPTED,
            S.HANDED_IN,
            S.IN_TRANSIT,
            S.READY_FOR_PICKUP,
            S.COMPLETED,
        ]
        page = html(buyer.get(f"/orders/sub/{paid.number}"))
        assert "梅县→广州 冷链车" in page
        assert re.findall(r'<li data-status="(\w+)">', page) == [s.value for s in history]

    def test_an_agent_fulfils_for_a_consenting_farmer(
        self, session, market, paid, as_user, make_user, village_point
    ):
        point = village_point(MEIXIAN)
        agent = make_user(Role.AGENT, node_id=point.id, name="村小二")
        farmer = market.shop.meixian_farmer
        consent(session, agent, farmer, point)
        client = as_user(agent)
        page = html(client.get("/orders/sell"))  # an agent who sells nothing sees their farmer's
        assert f'data-sub="{paid.number}"' in page
        assert f'href="/orders/sell?farmer={farmer.id}"' in page
        assert move(client, paid, "accepted").status_code == 302
        assert status_of(session, paid) == S.ACCEPTED
        # Another farmer's orders are none of the agent's business.
        other = market.shop.yingde_farmer
        assert client.get(f"/orders/sell?farmer={other.id}").status_code == 404
        assert client.get(f"/orders/sell?farmer={10**40}").status_code == 404

    def test_the_status_filter(self, session, market, paid, checkout_settings, gateway, as_user):
        other = market.pay(market.place({"梅县蜜柚": 1}, checkout_settings), gateway).sub_orders[0]
        manage.move(session, market.shop.meixian_farmer, other.number, S.ACCEPTED)
        client = as_user(market.shop.meixian_farmer)
        page = html(client.get("/orders/sell?status=accepted"))
        assert f'data-sub="{other.number}"' in page and f'data-sub="{paid.number}"' not in page
        page = html(client.get("/orders/sell"))
        assert f'data-sub="{other.number}"' in page and f'data-sub="{paid.number}"' in page
        assert client.get("/orders/sell?status=bogus").status_code == 422

    def test_seller_declines_a_paid_sub_order_and_localstripe_refunds_it(
        self, session, market, paid, as_user, localstripe
    ):
        farmer = as_user(market.shop.meixian_farmer)
        resp = farmer.post(f"/orders/sub/{paid.number}/decline", data={"reason": "台风把果子打落了"})
        assert resp.status_code == 302
        assert status_of(session, paid) == S.REFUNDED
        sub = session.get(SubOrder, paid.id)
        assert sub.refunded_fen == sub.total_fen and sub.decline_reason == "台风把果子打落了"
        (refund,) = session.scalars(select(Refund).where(Refund.sub_order_id == paid.id))
        assert refund.status == RefundStatus.SUCCEEDED and refund.amount_fen == sub.total_fen
        at_gateway = requests.get(
            f"{localstripe.url}/v1/refunds/{refund.gateway_refund_id}",
            headers={"Authorization": "Bearer sk_test_orders"},
            timeout=10,
        ).json()
        assert at_gateway["amount"] == sub.total_fen and at_gateway["status"] == "succeeded"
        assert at_gateway["payment_intent"] == sub.order.payment.intent_id
        # The buyer sees why, and the money back.
        page = html(as_user(market.buyer).get(f"/orders/{paid.order.number}"))
        assert "台风把果子打落了" in page and f'class="num refunded" data-fen="{sub.total_fen}"' in page

    def test_declining_needs_a_reason_and_keeps_the_order(self, session, market, paid, as_user):
        farmer = as_user(market.shop.meixian_farmer)
        resp = farmer.post(f"/orders/sub/{paid.number}/decline", data={"reason": "  "})
        assert resp.status_code == 422
        assert 'class="field-error"' in html(resp)
        assert status_of(session, paid) == S.PAID
        assert count(session, Refund) == 0


class TestRefunds:
    def test_after_sale_request_then_a_partial_staff_refund(
        self, session, market, paid, as_user, admin, gateway
    ):
        drive(
            session, market, paid, admin, gateway, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.OUT_FOR_DELIVERY
        )
        drive(session, market, paid, admin, gateway, S.COMPLETED)
        buyer = as_user(market.buyer)
        resp = buyer.post(f"/orders/sub/{paid.number}/refund-request", data={"reason": "有两个柚子坏了"})
        assert resp.status_code == 302
        assert status_of(session, paid) == S.REFUND_REQUESTED

        staff = as_user(admin)
        page = html(staff.get(f"/orders/sub/{paid.number}"))
        assert 'data-action="refund"' in page
        assert moves_on(page, paid.number) == {"completed"}  # or turn the request down
        key = re.search(r'name="key" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="key"[^>]*value="([^"]+)"', page
        )
        assert key is not None
        form = {"amount": "12.50", "reason": "坏果两个", "key": key.group(1)}
        assert staff.post(f"/orders/sub/{paid.number}/refund", data=form).status_code == 302
        # The same form sent again (a double tap) refunds once.
        assert staff.post(f"/orders/sub/{paid.number}/refund", data=form).status_code == 302
        assert status_of(session, paid) == S.COMPLETED  # part refunded: back to completed
        sub = session.get(SubOrder, paid.id)
        assert sub.refunded_fen == 1250
        assert count(session, Refund, Refund.sub_order_id == paid.id) == 1
        assert sub.order.payment.amount_refunded_fen == 1250

        page = html(buyer.get(f"/orders/{paid.order.number}"))
        assert 'class="num refunded" data-fen="1250"' in page
        assert 'data-status="completed"' in page
        assert 'data-refund-fen="1250"' in page  # the history says what went back

    def test_a_refund_over_what_is_left_is_a_form_error(self, session, market, paid, as_user, admin, gateway):
        drive(
            session, market, paid, admin, gateway, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.OUT_FOR_DELIVERY
        )
        drive(session, market, paid, admin, gateway, S.COMPLETED)
        staff = as_user(admin, english=True)
        too_much = f"{paid.total_fen // 100 + 1}.00"
        for amount, status in ((too_much, 422), ("12.345", 422), ("abc", 422), ("-5", 422)):
            resp = staff.post(
                f"/orders/sub/{paid.number}/refund",
                data={"amount": amount, "reason": "破损", "key": "k" * 20},
            )
            assert resp.status_code == status, amount
            assert 'class="field-error"' in html(resp)
            assert f'value="{amount}"' in html(resp)  # what was typed stays
        resp = staff.post(
            f"/orders/sub/{paid.number}/refund", data={"amount": "1", "reason": "", "key": "k" * 20}
        )
        assert resp.status_code == 422
        assert status_of(session, paid) == S.COMPLETED
        assert count(session, Refund) == 0

    def test_staff_refund_units_of_a_line_for_what_they_were_paid(
        self, session, market, paid, as_user, admin, gateway
    ):
        drive(session, market, paid, admin, gateway, S.ACCEPTED, S.HANDED_IN)
        (line,) = paid.lines
        unit_paid = line.paid_fen // line.quantity
        staff = as_user(admin, english=True)
        page = html(staff.get(f"/orders/sub/{paid.number}"))
        assert "data-refund-units" in page
        assert re.search(rf'name="units-{line.id}"[^>]*max="2"|max="2"[^>]*name="units-{line.id}"', page)
        url = f"/orders/sub/{paid.number}/refund"
        bad = [
            {f"units-{line.id}": "3"},  # more than bought
            {f"units-{line.id}": "abc"},
            {f"units-{line.id}": "-1"},
            {f"units-{line.id}": "1", "amount": "0.01"},  # not what the unit was paid
            {f"units-{line.id + 1000}": "1"},  # not a line of this sub-order
        ]
        for n, sent in enumerate(bad):
            resp = staff.post(url, data={"reason": "破损", "key": f"bad-unit-form-{n}", **sent})
            assert resp.status_code == 422, sent
            assert 'class="field-error"' in html(resp)
        assert count(session, Refund) == 0
        assert status_of(session, paid) == S.HANDED_IN

        form = {f"units-{line.id}": "1", "amount": "", "reason": "坏了一个", "key": "unit-form-01"}
        assert staff.post(url, data=form).status_code == 302
        assert staff.post(url, data=form).status_code == 302  # a double tap refunds once
        refund = session.scalars(select(Refund)).one()
        assert (refund.amount_fen, refund.units) == (unit_paid, {str(line.id): 1})
        session.expire_all()
        assert session.get(SubOrder, paid.id).refunded_fen == unit_paid
        assert status_of(session, paid) == S.HANDED_IN  # part of it: the sub-order moves on
        page = html(staff.get(f"/orders/sub/{paid.number}"))
        assert re.search(rf'name="units-{line.id}"[^>]*max="1"|max="1"[^>]*name="units-{line.id}"', page)
        assert "refunded 1" in page
        # The unit already refunded cannot go twice.
        again = {f"units-{line.id}": "2", "reason": "又坏了", "key": "unit-form-02"}
        assert staff.post(url, data=again).status_code == 422
        assert count(session, Refund) == 1

    def test_empty_amount_refunds_all_that_is_left(self, session, market, paid, as_user, admin, gateway):
        drive(session, market, paid, admin, gateway, S.ACCEPTED, S.HANDED_IN)
        staff = as_user(admin)
        resp = staff.post(
            f"/orders/sub/{paid.number}/refund", data={"amount": "", "reason": "丢件", "key": "lost-parcel-1"}
        )
        assert resp.status_code == 302
        assert status_of(session, paid) == S.REFUNDED
        assert session.get(SubOrder, paid.id).refunded_fen == paid.total_fen


class TestIllegalMoves:
    def test_a_buyer_cannot_accept(self, session, market, paid, as_user):
        buyer = as_user(market.buyer, english=True)
        resp = move(buyer, paid, "accepted")  # the seller's move, not the buyer's
        assert resp.status_code == 403
        assert "You do not have permission to do this." in html(resp)
        assert status_of(session, paid) == S.PAID

    def test_a_completed_order_cannot_go_back_to_accepted(
        self, session, market, paid, as_user, admin, gateway
    ):
        drive(
            session, market, paid, admin, gateway, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.READY_FOR_PICKUP
        )
        drive(session, market, paid, admin, gateway, S.COMPLETED)
        for client in (as_user(market.shop.meixian_farmer, english=True), as_user(admin, english=True)):
            resp = move(client, paid, "accepted")
            assert resp.status_code == 409
            assert "This order cannot be changed that way now." in html(resp)
        assert status_of(session, paid) == S.COMPLETED

    @pytest.mark.parametrize("target", ["paid", "refunded", "handed_in", "bogus", ""])
    def test_moves_with_money_attached_are_not_generic(self, session, market, paid, as_user, admin, target):
        resp = move(as_user(admin), paid, target)
        assert resp.status_code == 409
        assert status_of(session, paid) == S.PAID

    def test_a_seller_cannot_skip_to_in_transit_nor_hand_in_unaccepted(self, session, market, paid, as_user):
        farmer = as_user(market.shop.meixian_farmer)
        assert move(farmer, paid, "in_transit").status_code == 409
        assert farmer.post(f"/agent/intake/{paid.number}", data={"key": "k" * 20}).status_code == 403
        assert farmer.post(f"/orders/sub/{paid.number}/ready").status_code == 409
        assert status_of(session, paid) == S.PAID

    def test_a_buyer_cannot_decline_or_refund(self, session, market, paid, as_user):
        buyer = as_user(market.buyer)
        assert buyer.post(f"/orders/sub/{paid.number}/decline", data={"reason": "x"}).status_code == 403
        resp = buyer.post(f"/orders/sub/{paid.number}/refund", data={"reason": "x", "key": "k" * 20})
        assert resp.status_code == 403
        assert status_of(session, paid) == S.PAID and count(session, Refund) == 0

    def test_actions_need_the_csrf_token(self, session, app, market, paid, as_user, monkeypatch):
        farmer = as_user(market.shop.meixian_farmer)
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        assert move(farmer, paid, "accepted").status_code == 400
        assert status_of(session, paid) == S.PAID

    def test_pages_and_forms_carry_the_csrf_token(self, app, market, paid, as_user, monkeypatch):
        farmer = as_user(market.shop.meixian_farmer)
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        page = html(farmer.get("/orders/sell"))
        forms = re.findall(r'<form method="post" action="/orders/.*?</form>', page, re.S)
        assert forms and all('name="csrf_token"' in f for f in forms)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = farmer.post(
            f"/orders/sub/{paid.number}/move", data={"target": "accepted", "csrf_token": token}
        )
        assert resp.status_code == 302


class TestNotYours:
    def test_another_users_order_is_not_found(
        self, session, market, paid, as_user, make_user, checkout_settings
    ):
        unpaid = market.place({"梅县蜜柚": 1}, checkout_settings)
        stranger = as_user(make_user(Role.BUYER, name="路人"))
        assert stranger.get(f"/orders/{paid.order.number}").status_code == 404
        assert stranger.get(f"/orders/sub/{paid.number}").status_code == 404
        assert move(stranger, paid, "completed").status_code == 404
        assert (
            stranger.post(f"/orders/sub/{paid.number}/refund-request", data={"reason": "x"}).status_code
            == 404
        )
        assert stranger.post(f"/orders/{unpaid.number}/cancel").status_code == 404
        assert stranger.get("/orders/no-such-order").status_code == 404
        assert status_of(session, paid) == S.PAID
        assert status_of(session, unpaid.sub_orders[0]) == S.PENDING_PAYMENT
        assert f'data-order="{paid.order.number}"' not in html(stranger.get("/orders/"))

    def test_another_seller_does_not_see_it(self, session, market, paid, as_user):
        other = as_user(market.shop.yingde_farmer)
        assert f'data-sub="{paid.number}"' not in html(other.get("/orders/sell"))
        assert other.get(f"/orders/sub/{paid.number}").status_code == 404
        assert move(other, paid, "accepted").status_code == 404
        assert status_of(session, paid) == S.PAID

    def test_the_staff_list_is_for_staff(self, market, as_user):
        assert as_user(market.buyer).get("/orders/staff").status_code == 403

    def test_pages_need_a_login(self, client, paid):
        for url in ("/orders/", f"/orders/{paid.order.number}", "/orders/sell", "/orders/staff"):
            resp = client.get(url)
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


class TestWorkspaceLinks:
    def test_each_role_finds_its_orders(self, market, as_user, county_staff):
        assert 'href="/orders/sell"' in html(as_user(market.shop.meixian_farmer).get("/workspace"))
        assert 'href="/orders/"' in html(as_user(market.buyer).get("/workspace"))
        assert 'href="/orders/staff"' in html(as_user(county_staff).get("/workspace"))

    def test_an_admin_finds_finance_and_the_periodic_jobs(self, as_user, admin, county_staff):
        page = html(as_user(admin).get("/workspace"))
        assert 'href="/finance/"' in page and 'href="/admin/jobs"' in page
        assert 'href="/admin/jobs"' not in html(as_user(county_staff).get("/workspace"))


def test_paid_orders_are_in_the_database_as_the_pages_say(session, paid):
    # Guards the fixtures: a paid order has a succeeded payment at localstripe.
    order = session.get(Order, paid.order_id)
    assert order.payment.status == PaymentStatus.SUCCEEDED
