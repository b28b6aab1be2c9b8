"""Issue 11, item 5, the pages: the agent's produce to receive, the intake form (weights in 斤
or kg, grade, accepted quantity, a photo; one multipart POST that works without JavaScript), its
result, the seller's view of it, and a lot's public trace page. Bad input comes back on the form
with the message beside its field and nothing written."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from sqlalchemy import select

from domain import Intake, IntakePhoto, Lot, OrderStatus, Refund, Role, SubOrder
from services.orders import manage
from tests.conftest import YINGDE, count
from tests.factories import jpeg

S = OrderStatus
POMELO, CHICKEN = "梅县金柚", "冰鲜走地鸡"


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


@pytest.fixture()
def sub(session, market, checkout_settings, gateway, point) -> SubOrder:  # type: ignore[no-untyped-def]
    """Two 斤 of 梅县金柚 and one 走地鸡 from the Meixian farmer (home point: `point`), paid and
    accepted."""
    order = market.pay(market.place({POMELO: 2, CHICKEN: 1}, checkout_settings), gateway)
    (found,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, found.number, S.ACCEPTED)
    return fresh(session, found)


def ids(sub: SubOrder) -> tuple[int, int]:
    pomelo = next(line.id for line in sub.lines if line.name == POMELO)
    chicken = next(line.id for line in sub.lines if line.name == CHICKEN)
    return pomelo, chicken


def form(sub: SubOrder, key: str = "intake-form-key-1", **changes: str) -> dict[str, str]:
    pomelo, chicken = ids(sub)
    data = {
        "key": key,
        f"weight-{pomelo}": "1.8",  # 斤: 900 g of the 1000 g ordered
        f"grade-{pomelo}": "second",
        f"quantity-{pomelo}": "2",
        f"weight-{chicken}": "1.45",  # kg
        f"grade-{chicken}": "first",
        f"quantity-{chicken}": "1",
    }
    data.update(
        {k.replace("POMELO", str(pomelo)).replace("CHICKEN", str(chicken)): v for k, v in changes.items()}
    )
    return data


def nothing_written(session, sub: SubOrder) -> None:  # type: ignore[no-untyped-def]
    assert fresh(session, sub).status == S.ACCEPTED
    assert count(session, Intake) == count(session, Lot) == count(session, Refund) == 0


class TestTheAgentsDay:
    def test_receive_weigh_grade_photograph_and_the_lot_is_traced(
        self, session, app, market, sub, as_user, agent, client
    ):
        page = as_user(agent)
        listing = html(page.get("/agent/intake/"))
        assert f'data-sub="{sub.number}"' in listing
        assert f'href="/agent/intake/{sub.number}"' in listing
        assert 'data-action="hand-in"' in html(page.get(f"/orders/sub/{sub.number}"))
        shown = html(page.get(f"/agent/intake/{sub.number}"))
        pomelo, chicken = ids(sub)
        assert f'name="weight-{pomelo}"' in shown and f'name="photo-{chicken}"' in shown
        assert "称重重量（斤）" in shown and "称重重量（公斤）" in shown  # 斤 for produce sold in 斤

        data = form(sub)
        data[f"photo-{pomelo}"] = (BytesIO(jpeg((800, 600))), "pomelo.jpg")
        resp = page.post(f"/agent/intake/{sub.number}", data=data, content_type="multipart/form-data")
        assert resp.status_code == 302, html(resp)
        done = fresh(session, sub)
        assert done.status == S.HANDED_IN
        assert done.refunded_fen == 4500 * 2 - 4500 * 900 // 500 == 900  # 100 g short, ¥45 a 斤
        result = html(page.get(resp.headers["Location"]))
        assert 'data-settlement="refund"' in result and 'data-fen="900"' in result
        lots = session.scalars(select(Lot).order_by(Lot.id)).all()
        assert len(lots) == 2 and all(lot.code in result for lot in lots)
        photo = session.scalars(select(IntakePhoto)).one()
        assert lots[0].photo_id == photo.id and photo.key in result

        # The farmer sees the intake on their order page: weighed, graded, refunded.
        farmer = as_user(market.shop.meixian_farmer)
        theirs = html(farmer.get(f"/orders/sub/{sub.number}"))
        assert 'data-weighed-g="900"' in theirs and 'data-grade="second"' in theirs
        assert "二级" in theirs and 'class="num intake-difference" data-fen="900"' in theirs

        # Anyone may read a lot's trace: product, village and town, grade, day, point; nothing personal.
        old_link = client.get(f"/trace/{lots[0].code.lower()}")  # printed before /t/ existed
        assert old_link.status_code == 301 and old_link.headers["Location"].endswith(
            f"/t/{lots[0].code.lower()}"
        )
        trace = client.get(f"/t/{lots[0].code.lower()}")
        assert trace.status_code == 200
        text = html(trace)
        origin = market.product(POMELO).origin
        assert origin.short_name in text and origin.parent.name in text
        assert "二级" in text and "2026-11-26" in text and agent.display_name not in text
        assert market.shop.meixian_farmer.display_name not in text and market.buyer.phone not in text
        assert 'data-verified="yes"' in text
        assert client.get("/t/AAAAAAAAAAAAAAAA").status_code == 404
        assert client.get("/t/x").status_code == 404

    def test_the_same_form_sent_twice_applies_once_another_finds_it_received(
        self, session, sub, as_user, agent
    ):
        page = as_user(agent)
        assert page.post(f"/agent/intake/{sub.number}", data=form(sub)).status_code == 302
        again = page.post(f"/agent/intake/{sub.number}", data=form(sub))  # a flaky network's repeat
        assert again.status_code == 302
        assert count(session, Intake) == 1 and count(session, Refund) == 1 and count(session, Lot) == 2
        other = page.post(f"/agent/intake/{sub.number}", data=form(sub, key="intake-form-key-2"))
        assert other.status_code == 409 and "已在服务点收货" in html(other)
        assert count(session, Intake) == 1

    def test_the_seller_is_not_offered_the_hand_in_and_is_refused_it(self, session, market, sub, as_user):
        farmer = as_user(market.shop.meixian_farmer)
        assert 'data-action="hand-in"' not in html(farmer.get("/orders/sell"))
        assert 'data-action="hand-in"' not in html(farmer.get(f"/orders/sub/{sub.number}"))
        assert farmer.get(f"/agent/intake/{sub.number}").status_code == 403
        assert farmer.post(f"/agent/intake/{sub.number}", data=form(sub)).status_code == 403
        assert farmer.post(f"/orders/sub/{sub.number}/hand-in").status_code in (404, 405)
        assert farmer.get("/agent/intake/").status_code == 403
        nothing_written(session, sub)


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"weight-POMELO": "0"}, "weight-POMELO", "重量必须大于零"),
            ({"weight-POMELO": "20"}, "weight-POMELO", "3 倍"),  # ten times the 2 斤 ordered
            ({"weight-POMELO": "两斤"}, "weight-POMELO", "请按斤填写重量"),
            ({"weight-CHICKEN": "1.4567"}, "weight-CHICKEN", "请按公斤填写重量"),
            ({"grade-POMELO": "bogus"}, "grade-POMELO", "请从列表中选择等级"),
            ({"quantity-CHICKEN": "5"}, "quantity-CHICKEN", "0 到 1"),
        ],
    )
    def test_refused_beside_its_field_with_what_was_typed_and_nothing_written(
        self, session, sub, as_user, agent, change, field, message
    ):
        page = as_user(agent)
        resp = page.post(f"/agent/intake/{sub.number}", data=form(sub, **change))
        assert resp.status_code == 422
        text = html(resp)
        pomelo, chicken = ids(sub)
        name = field.replace("POMELO", str(pomelo)).replace("CHICKEN", str(chicken))
        assert re.search(rf'id="{name}"[^>]*class="invalid"', text)
        assert message in text
        typed = next(iter(change.values()))
        if field.startswith("weight"):
            assert f'value="{typed}"' in text
        nothing_written(session, sub)

    def test_a_photo_that_is_not_a_photo_is_refused_and_the_rest_kept(self, session, sub, as_user, agent):
        page = as_user(agent)
        pomelo, _chicken = ids(sub)
        data = form(sub)
        data[f"photo-{pomelo}"] = (BytesIO(b"not a photo at all"), "x.jpg")
        resp = page.post(f"/agent/intake/{sub.number}", data=data, content_type="multipart/form-data")
        assert resp.status_code == 422 and "不是照片" in html(resp)
        nothing_written(session, sub)

    def test_another_points_agent_does_not_find_it(self, session, sub, as_user, make_user, village_point):
        elsewhere = make_user(Role.AGENT, node_id=village_point(YINGDE).id, name="英德村小二")
        page = as_user(elsewhere)
        assert page.get(f"/agent/intake/{sub.number}").status_code == 404
        assert page.post(f"/agent/intake/{sub.number}", data=form(sub)).status_code == 404
        assert sub.number not in html(page.get("/agent/intake/"))
        nothing_written(session, sub)

    def test_an_order_not_accepted_cannot_be_received(
        self, session, market, checkout_settings, gateway, point, as_user, agent
    ):
        order = market.pay(market.place({POMELO: 1}, checkout_settings), gateway)
        (paid,) = order.sub_orders
        page = as_user(agent)
        assert "卖家接单后才能收货" in html(page.get(f"/agent/intake/{paid.number}"))
        line = paid.lines[0]
        data = {"key": "intake-form-key-9", f"weight-{line.id}": "1", f"grade-{line.id}": "first"}
        assert page.post(f"/agent/intake/{paid.number}", data=data).status_code == 409
        assert fresh(session, paid).status == S.PAID and count(session, Intake) == 0
