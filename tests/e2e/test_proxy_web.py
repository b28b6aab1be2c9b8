"""Proxy orders over the agent's pages (issue 11, item 3): pick a villager, search the goods, fill
the cart, place the order paid by the villager's QR shown on the agent's screen (paid through the
real localstripe), in cash now for a villager without a phone, and on the agent's credit (county
staff set the limit on their page) then collected at pickup; refusals as pages, nothing written."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from domain import Notification, NotificationEvent, Order, OrderStatus, PaymentStatus, Role
from services import cash, ledger, villagers
from services.villagers import VillagerInput
from tests.conftest import YINGDE, count

FERTILIZER = "复合肥"


def page_of(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def form_key(page: str, action: str) -> str:
    form = re.search(rf'action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert form, f"no form posting to {action}"
    key = re.search(r'name="key"[^>]*value="([^"]+)"', form.group(1)) or re.search(
        r'value="([^"]+)"[^>]*name="key"', form.group(1)
    )
    assert key
    return key.group(1)


def register(session, agent, point, name, phone):  # type: ignore[no-untyped-def]
    return villagers.register_villager(
        session,
        agent,
        VillagerInput(name=name, village_code=point.division_code, phone=phone),
        idempotency_key=f"web-{name}",
    )


@pytest.fixture()
def staff(make_user, point):  # type: ignore[no-untyped-def]
    return make_user(Role.COUNTY_STAFF, county_code=point.county_code, name="梅县服务中心")


def order_of(session, villager) -> Order:  # type: ignore[no-untyped-def]
    session.expire_all()
    order = session.scalar(select(Order).where(Order.villager_id == villager.id).order_by(Order.id.desc()))
    assert order is not None
    return order


def shop_and_place(client, market, villager, method):  # type: ignore[no-untyped-def]
    base = f"/agent/proxy/villagers/{villager.id}"
    page = page_of(client.get(f"{base}?q={FERTILIZER}"))
    assert FERTILIZER in page
    product = market.product(FERTILIZER).id
    resp = client.post(f"{base}/cart/{product}", data={"quantity": "2"})
    assert resp.status_code == 302
    page = page_of(client.get(base))
    assert "¥" in page and f"{base}/place" in page
    key = form_key(page, f"{base}/place")
    resp = client.post(f"{base}/place", data={"key": key, "payment_method": method})
    assert resp.status_code == 302, page_of(resp)
    again = client.post(f"{base}/place", data={"key": key, "payment_method": method})
    assert again.status_code == 302 and again.headers["Location"] == resp.headers["Location"]
    return resp.headers["Location"]


class TestAgentPages:
    def test_a_villager_pays_the_qr_shown_on_the_agents_screen(
        self, session, market, agent, point, as_user, localstripe
    ):
        villager = register(session, agent, point, "陈阿婆", "13912340000")
        client = as_user(agent)
        page = page_of(client.get("/agent/proxy/?q=cap"))
        assert "陈阿婆" in page
        assert "/agent/proxy/" in page_of(client.get("/workspace"))
        location = shop_and_place(client, market, villager, "wechat_pay")
        page = page_of(client.get(location))
        assert 'data-state="wechat"' in page and "<svg" in page
        assert 'http-equiv="refresh"' in page
        order = order_of(session, villager)
        assert count(session, Order) == 1
        localstripe.wallet_paid(order.payment.intent_id)
        page = page_of(client.get(location))
        assert 'data-state="paid"' in page
        listed = page_of(client.get("/agent/proxy/orders?status=paid"))
        assert order.number in listed
        assert order.number not in page_of(client.get("/agent/proxy/orders?status=unpaid"))
        assert client.get("/agent/proxy/orders?status=nonsense").status_code == 422

    def test_cash_now_for_a_villager_without_a_phone(self, session, market, agent, point, as_user):
        villager = register(session, agent, point, "李伯", "")
        client = as_user(agent)
        location = shop_and_place(client, market, villager, "cash")
        page = page_of(client.get(location))
        assert 'data-state="paid"' in page
        order = order_of(session, villager)
        assert order.payment.status == PaymentStatus.SUCCEEDED
        assert ledger.balance(session, ledger.cash_held_code(agent.id)) == order.total_fen
        assert order.recipient_phone  # the point's (or the agent's) phone: the SMS reach the point
        sent = session.scalars(select(Notification.phone).where(Notification.order_id == order.id)).all()
        assert set(sent) == {order.recipient_phone}

    def test_on_credit_set_by_county_staff_then_collected_at_pickup(
        self, session, market, agent, point, staff, as_user
    ):
        villager = register(session, agent, point, "陈阿婆", "13912340000")
        client = as_user(agent)
        base = f"/agent/proxy/villagers/{villager.id}"
        client.post(f"{base}/cart/{market.product(FERTILIZER).id}", data={"quantity": "1"})
        page = page_of(client.get(base))
        refused = client.post(
            f"{base}/place", data={"key": form_key(page, f"{base}/place"), "payment_method": "credit"}
        )
        assert refused.status_code == 409
        assert "¥0.00" in page_of(refused)
        assert count(session, Order) == 0

        county = as_user(staff)
        page = page_of(county.get("/county/credit"))
        action = f"/county/credit/{agent.id}"
        key = form_key(page, action)
        assert county.post(action, data={"key": key, "limit": "-5"}).status_code == 422
        assert county.post(action, data={"key": key, "limit": "9999999"}).status_code == 422
        assert county.post(action, data={"key": key, "limit": "800"}).status_code == 302
        assert client.get("/county/credit").status_code == 403  # agents do not set credit

        page = page_of(client.get(base))
        resp = client.post(
            f"{base}/place", data={"key": form_key(page, f"{base}/place"), "payment_method": "credit"}
        )
        assert resp.status_code == 302
        assert 'data-state="on_credit"' in page_of(client.get(resp.headers["Location"]))
        order = order_of(session, villager)
        assert {s.status for s in order.sub_orders} == {OrderStatus.PAID}
        assert ledger.credit_used(session, agent.id) == order.total_fen
        assert session.scalars(select(Notification.event).where(Notification.order_id == order.id)).all() == [
            NotificationEvent.PROXY_PLACED
        ]

        cash.collect_on_pickup(session, agent, order)  # the parcel hand-over does this
        session.commit()
        assert 'data-state="collected"' in page_of(client.get(resp.headers["Location"]))
        assert ledger.credit_used(session, agent.id) == 0

    def test_another_points_villager_and_strangers_are_refused(
        self, session, market, agent, point, make_user, village_point, as_user
    ):
        elsewhere = village_point(YINGDE)
        their_agent = make_user(Role.AGENT, node_id=elsewhere.id)
        theirs = register(session, their_agent, elsewhere, "黄婆婆", "")
        client = as_user(agent)
        assert client.get(f"/agent/proxy/villagers/{theirs.id}").status_code == 403
        resp = client.post(
            f"/agent/proxy/villagers/{theirs.id}/place",
            data={"key": "stranger-key-0001", "payment_method": "cash"},
        )
        assert resp.status_code == 403
        assert client.get("/agent/proxy/villagers/999999999").status_code == 404
        assert as_user(market.buyer).get("/agent/proxy/").status_code == 403
        other_staff = as_user(make_user(Role.COUNTY_STAFF, county_code=YINGDE))
        assert (
            other_staff.post(
                f"/county/credit/{agent.id}", data={"key": "stranger-key-0002", "limit": "100"}
            ).status_code
            == 403
        )
        assert count(session, Order) == 0
