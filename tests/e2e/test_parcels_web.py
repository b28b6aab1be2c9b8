"""Parcels at the village point over the pages (issue 11, item 4): the agent's list of parcels
arriving (a tap, or the scan field a USB scanner types into) and waiting (age, flag), the
hand-over form with the pickup code or a recorded reason, the cash of an order on credit; another
point's parcel is not found; refusals are form errors in the agent's language."""

from __future__ import annotations

import re

import pytest

from domain import OrderStatus, ParcelHandover, PaymentStatus, Role, SubOrder
from services import parcels
from services.orders import checkout
from tests.conftest import YINGDE, count
from tests.factories import credit_parcel_waiting, pickup_code_of, pickup_parcel_in_transit

S = OrderStatus
EN = {"Accept-Language": "en"}


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def key() -> str:
    return checkout.new_idempotency_key()


def status_of(session, sub: SubOrder) -> OrderStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found.status


@pytest.fixture()
def on_the_way(session, market, gateway, checkout_settings, admin, point) -> SubOrder:  # type: ignore[no-untyped-def]
    return pickup_parcel_in_transit(session, market, gateway, checkout_settings, admin, point)


@pytest.fixture()
def waiting(session, on_the_way, agent) -> SubOrder:  # type: ignore[no-untyped-def]
    parcels.mark_arrived(session, agent, on_the_way.number, key())
    session.expire_all()
    return session.get(SubOrder, on_the_way.id)  # type: ignore[return-value]


@pytest.fixture()
def other_agent(make_user, village_point):  # type: ignore[no-untyped-def]
    return make_user(Role.AGENT, node_id=village_point(YINGDE).id, name="英德村小二")


class TestTheList:
    def test_the_workspace_links_to_it(self, as_user, agent):
        assert 'href="/agent/parcels"' in html(as_user(agent).get("/workspace"))

    def test_a_scan_marks_it_arrived_and_it_moves_to_the_waiting_list(
        self, session, as_user, agent, on_the_way
    ):
        client = as_user(agent)
        page = html(client.get("/agent/parcels"))
        assert f'data-sub="{on_the_way.number}"' in page and 'name="number"' in page and "autofocus" in page
        resp = client.post("/agent/parcels/arrived", data={"number": on_the_way.number, "key": key()})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/agent/parcels")
        assert status_of(session, on_the_way) == S.READY_FOR_PICKUP
        page = html(client.get("/agent/parcels"))
        assert f'id="w{on_the_way.number}"' in page and f'id="a{on_the_way.number}"' not in page
        assert "陈小姐" in page and "139****5678" in page
        # Tapped again (the page was old): the same result.
        again = client.post("/agent/parcels/arrived", data={"number": on_the_way.number, "key": key()})
        assert again.status_code == 302

    def test_a_number_that_is_not_ours_is_said_on_the_form(
        self, session, as_user, agent, other_agent, on_the_way
    ):
        client = as_user(other_agent, english=True)
        assert f'data-sub="{on_the_way.number}"' not in html(client.get("/agent/parcels"))
        resp = client.post("/agent/parcels/arrived", data={"number": on_the_way.number, "key": key()})
        assert resp.status_code == 404 and "No parcel with this number" in html(resp)
        assert status_of(session, on_the_way) == S.IN_TRANSIT
        empty = as_user(agent).post("/agent/parcels/arrived", data={"number": " ", "key": key()})
        assert empty.status_code == 422 and 'role="alert"' in html(empty)
        expired = as_user(agent).post("/agent/parcels/arrived", data={"number": on_the_way.number, "key": ""})
        assert expired.status_code == 422 and status_of(session, on_the_way) == S.IN_TRANSIT

    def test_someone_who_runs_no_point_is_refused(self, as_user, market):
        assert as_user(market.buyer).get("/agent/parcels").status_code == 403

    def test_an_old_parcel_is_flagged(self, clock, session, as_user, agent, waiting):
        page = html(as_user(agent).get("/agent/parcels"))
        assert 'data-age="0"' in page and "data-flagged" not in page
        clock.advance(days=parcels.REMIND_DAYS, minutes=1)
        page = html(as_user(agent).get("/agent/parcels"))
        assert f'data-age="{parcels.REMIND_DAYS}"' in page and 'data-flagged="1"' in page
        assert "未取" in page  # the flag reads in Chinese


class TestTheHandoverForm:
    def test_a_wrong_code_is_an_error_and_the_right_one_hands_it_over_once(
        self, session, as_user, agent, waiting, pickup_keys
    ):
        client = as_user(agent, english=True)
        page = html(client.get(f"/agent/parcels/{waiting.number}"))
        assert 'name="pickup_code"' in page and 'name="reason"' in page and 'name="cash_received"' not in page
        code = pickup_code_of(session, waiting.order, pickup_keys)
        url = f"/agent/parcels/{waiting.number}/handover"
        form_key = key()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post(url, data={"pickup_code": wrong, "key": form_key})
        assert resp.status_code == 422 and "Tries left: 4" in html(resp)
        assert status_of(session, waiting) == S.READY_FOR_PICKUP
        done = client.post(url, data={"pickup_code": code, "key": form_key})
        assert done.status_code == 302 and status_of(session, waiting) == S.COMPLETED
        assert client.post(url, data={"pickup_code": code, "key": form_key}).status_code == 302
        other = client.post(url, data={"pickup_code": code, "key": key()})
        assert other.status_code == 409 and "already collected" in html(other)
        assert count(session, ParcelHandover) == 1
        shown = html(client.get(f"/agent/parcels/{waiting.number}"))
        assert 'id="handed-over"' in shown and "陈小姐" in shown and 'name="pickup_code"' not in shown

    def test_without_the_code_a_reason_and_a_name(self, session, as_user, agent, waiting):
        client = as_user(agent)
        url = f"/agent/parcels/{waiting.number}/handover"
        nothing = client.post(url, data={"key": key()})
        assert nothing.status_code == 422 and "取货码" in html(nothing)
        no_name = client.post(url, data={"key": key(), "reason": "id_card"})
        assert no_name.status_code == 422
        assert count(session, ParcelHandover) == 0
        ok = client.post(
            url,
            data={
                "key": key(),
                "reason": "id_card",
                "reason_text": "身份证尾号1234",
                "collected_by": "陈小姐",
            },
        )
        assert ok.status_code == 302
        row = session.query(ParcelHandover).one()
        assert (row.method.value, row.reason.value, row.reason_text) == (
            "reason",
            "id_card",
            "身份证尾号1234",
        )
        assert "出示身份证" in html(client.get(f"/agent/parcels/{waiting.number}"))

    def test_another_points_agent_gets_not_found(self, session, as_user, other_agent, waiting, pickup_keys):
        client = as_user(other_agent)
        assert client.get(f"/agent/parcels/{waiting.number}").status_code == 404
        code = pickup_code_of(session, waiting.order, pickup_keys)
        resp = client.post(
            f"/agent/parcels/{waiting.number}/handover", data={"pickup_code": code, "key": key()}
        )
        assert resp.status_code == 404 and status_of(session, waiting) == S.READY_FOR_PICKUP
        assert client.get("/agent/parcels/no-such-parcel").status_code == 404


class TestCashOnPickup:
    @pytest.fixture()
    def credit_parcel(self, session, market, checkout_settings, admin, point, agent, make_user):  # type: ignore[no-untyped-def]
        return credit_parcel_waiting(session, market, checkout_settings, admin, point, agent, make_user)

    def test_the_form_asks_for_the_cash(self, session, as_user, agent, credit_parcel):
        client = as_user(agent)
        page = html(client.get(f"/agent/parcels/{credit_parcel.number}"))
        assert 'name="cash_received"' in page and "王秀英" in page
        amount = f"{credit_parcel.total_fen // 100:,}"
        assert re.search(rf"¥\s*{amount}", page)
        url = f"/agent/parcels/{credit_parcel.number}/handover"
        data = {"key": key(), "reason": "known_villager", "collected_by": "王秀英"}
        unconfirmed = client.post(url, data=data)
        assert unconfirmed.status_code == 422 and status_of(session, credit_parcel) == S.READY_FOR_PICKUP
        done = client.post(url, data={**data, "cash_received": "y"})
        assert done.status_code == 302 and status_of(session, credit_parcel) == S.COMPLETED
        session.expire_all()
        assert session.get(SubOrder, credit_parcel.id).order.payment.status == PaymentStatus.SUCCEEDED
