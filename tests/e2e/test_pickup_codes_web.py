"""Pickup codes and order messages over HTTP (issue 10, item 9): the buyer's order page shows the
code and issues a new one; the agent's hand-over form asks for it and says how many tries are
left; the API's transition takes it too; the account page turns the optional messages off."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain import (
    NotificationEvent,
    NotificationOptOut,
    OrderStatus,
    PickupCode,
    SubOrder,
)
from services.orders import manage
from services.orders.checkout import AddressInput
from tests.factories import pickup_code_of, receive

S = OrderStatus


@pytest.fixture()
def ready(session, market, checkout_settings, gateway, admin, point) -> SubOrder:  # type: ignore[no-untyped-def]
    """A paid pickup order at the point, arrived: its one sub-order, ready for pickup."""
    order = market.place(
        {"梅县金柚": 1},
        checkout_settings,
        delivery="pickup",
        pickup_node_id=point.id,
        pickup_contact=AddressInput(recipient="陈小姐", phone="13912345678"),
        address=None,
    )
    market.pay(order, gateway)
    (sub,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
    receive(session, gateway, sub)  # the intake at the point, weighed as ordered
    manage.move(session, admin, sub.number, S.IN_TRANSIT)
    manage.move(session, admin, sub.number, S.READY_FOR_PICKUP)
    return sub


def status_of(session, sub: SubOrder) -> OrderStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found.status


def attempts(session, sub: SubOrder) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(PickupCode.attempts).where(PickupCode.order_id == sub.order_id)) or 0


class TestTheBuyersPage:
    def test_the_buyer_sees_the_code_and_nobody_else_does(
        self, session, market, ready, as_user, agent, pickup_keys
    ):
        code = pickup_code_of(session, ready.order, pickup_keys)
        page = as_user(market.buyer).get(f"/orders/{ready.order.number}").get_data(as_text=True)
        assert f'data-pickup-code="{code}"' in page
        staff_page = as_user(agent).get(f"/orders/{ready.order.number}")
        assert staff_page.status_code == 200 and code not in staff_page.get_data(as_text=True)

    def test_a_new_code_replaces_the_old_one_and_only_its_buyer_may_ask(
        self, session, market, ready, as_user, agent, pickup_keys
    ):
        old = pickup_code_of(session, ready.order, pickup_keys)
        assert as_user(agent).post(f"/orders/{ready.order.number}/pickup-code").status_code == 404
        resp = as_user(market.buyer).post(f"/orders/{ready.order.number}/pickup-code")
        assert resp.status_code == 302
        session.expire_all()
        row = session.scalar(select(PickupCode).where(PickupCode.order_id == ready.order_id))
        assert row is not None and row.issue == 2
        new = pickup_code_of(session, ready.order, pickup_keys)
        page = as_user(market.buyer).get(f"/orders/{ready.order.number}").get_data(as_text=True)
        assert f'data-pickup-code="{new}"' in page and (new == old or f'data-pickup-code="{old}"' not in page)


class TestTheHandOverForm:
    def test_the_form_asks_for_the_code_and_counts_a_wrong_one(
        self, session, ready, as_user, agent, pickup_keys
    ):
        client = as_user(agent, english=True)
        page = client.get(f"/orders/sub/{ready.number}").get_data(as_text=True)
        assert 'name="pickup_code"' in page and 'data-move="completed"' in page
        url = f"/orders/sub/{ready.number}/move"
        missing = client.post(url, data={"target": "completed"})
        assert missing.status_code == 422 and "pickup code" in missing.get_data(as_text=True)
        assert attempts(session, ready) == 0
        code = pickup_code_of(session, ready.order, pickup_keys)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post(url, data={"target": "completed", "pickup_code": wrong})
        assert resp.status_code == 422 and "Tries left: 4" in resp.get_data(as_text=True)
        assert attempts(session, ready) == 1 and status_of(session, ready) == S.READY_FOR_PICKUP
        assert client.post(url, data={"target": "completed", "pickup_code": code}).status_code == 302
        assert status_of(session, ready) == S.COMPLETED

    def test_a_locked_code_says_so(self, session, ready, as_user, agent, pickup_keys):
        client = as_user(agent, english=True)
        code = pickup_code_of(session, ready.order, pickup_keys)
        url = f"/orders/sub/{ready.number}/move"
        guesses = [f"{n:06d}" for n in range(10) if f"{n:06d}" != code][:5]
        answers = [client.post(url, data={"target": "completed", "pickup_code": g}) for g in guesses]
        assert [a.status_code for a in answers] == [422, 422, 422, 422, 409]
        assert "locked" in answers[-1].get_data(as_text=True)
        assert client.post(url, data={"target": "completed", "pickup_code": code}).status_code == 409
        assert status_of(session, ready) == S.READY_FOR_PICKUP

    def test_the_api_takes_the_code_too(self, session, client, market, ready, bearer, agent, pickup_keys):
        headers = bearer(agent)
        url = f"/api/v1/sub-orders/{ready.number}/transition"
        code = pickup_code_of(session, ready.order, pickup_keys)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post(url, json={"to": "completed", "pickup_code": wrong}, headers=headers)
        assert resp.status_code == 422 and resp.get_json()["code"] == "wrong_pickup_code"
        mine = client.get(f"/api/v1/orders/{ready.order.number}", headers=bearer(market.buyer)).get_json()
        theirs = client.get(f"/api/v1/orders/{ready.order.number}", headers=headers).get_json()
        assert mine["pickup_code"] == code and theirs["pickup_code"] is None
        resp = client.post(url, json={"to": "completed", "pickup_code": code}, headers=headers)
        assert resp.status_code == 200 and resp.get_json()["status"] == "completed"
        again = client.post(url, json={"to": "completed", "pickup_code": code}, headers=headers)
        assert again.status_code == 200 and attempts(session, ready) == 0


class TestTheAccountPage:
    def test_the_optional_messages_are_turned_off_and_on(self, session, market, as_user):
        client = as_user(market.buyer)
        page = client.get("/auth/me").get_data(as_text=True)
        assert page.count('name="events"') == 3 and page.count(" checked") >= 3
        assert client.post("/auth/me/notifications", data={"events": ["out_for_delivery"]}).status_code == 302
        off = set(
            session.scalars(
                select(NotificationOptOut.event).where(NotificationOptOut.user_id == market.buyer.id)
            )
        )
        assert off == {NotificationEvent.ACCEPTED, NotificationEvent.HANDED_IN}
        assert client.post("/auth/me/notifications", data={"events": ["paid"]}).status_code == 422
        assert (
            client.post(
                "/auth/me/notifications", data={"events": ["accepted", "handed_in", "out_for_delivery"]}
            ).status_code
            == 302
        )
        session.expire_all()
        assert (
            session.scalars(
                select(NotificationOptOut).where(NotificationOptOut.user_id == market.buyer.id)
            ).all()
            == []
        )
