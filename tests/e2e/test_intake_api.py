"""Issue 11, items 5 and 10, the API: the produce to receive, a photo upload, the intake recorded
with an idempotency key (the hand-in), the lot, and the public trace; every bad input a 4xx with
nothing written; all of it in the OpenAPI document."""

from __future__ import annotations

from io import BytesIO

import pytest

from domain import Intake, Lot, OrderStatus, Refund, Role, SubOrder
from services.orders import manage
from tests.conftest import YINGDE, count
from tests.factories import jpeg

S = OrderStatus
POMELO, CHICKEN = "梅县金柚", "冰鲜走地鸡"


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(SubOrder, sub.id)  # type: ignore[return-value]


def assert_error(resp, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert resp.status_code == status, resp.get_data(as_text=True)
    data = resp.get_json()
    assert isinstance(data["message"], str) and data["message"]
    if code is not None:
        assert data["code"] == code, data
    return data


@pytest.fixture()
def sub(session, market, checkout_settings, gateway, point) -> SubOrder:  # type: ignore[no-untyped-def]
    order = market.pay(market.place({POMELO: 2, CHICKEN: 1}, checkout_settings), gateway)
    (found,) = order.sub_orders
    manage.move(session, market.shop.meixian_farmer, found.number, S.ACCEPTED)
    return fresh(session, found)


def body(sub: SubOrder, **changes: dict) -> dict:  # type: ignore[type-arg]
    """Every line as ordered, grade first; `changes[product name]` per line."""
    lines = []
    for line in sub.lines:
        entry = {"line_id": line.id, "weight_g": line.net_weight_g * line.quantity, "grade": "first"}
        entry.update(changes.get(line.name, {}))
        lines.append(entry)
    return {"lines": lines}


def url(sub: SubOrder) -> str:
    return f"/api/v1/agent/intake/sub-orders/{sub.number}"


def nothing_written(session, sub: SubOrder) -> None:  # type: ignore[no-untyped-def]
    assert fresh(session, sub).status == S.ACCEPTED
    assert count(session, Intake) == count(session, Lot) == count(session, Refund) == 0


class TestTheFlow:
    def test_list_upload_record_once_and_trace(self, session, client, market, sub, agent, bearer):
        headers = bearer(agent)
        listed = client.get("/api/v1/agent/intake/sub-orders", headers=headers)
        assert listed.status_code == 200
        (shown,) = listed.get_json()
        assert shown["number"] == sub.number and shown["status"] == "accepted"
        pomelo = next(line for line in shown["lines"] if line["name"] == POMELO)
        assert pomelo["by_weight"] is True and pomelo["max_weight_g"] == 3 * 1000
        one = client.get(url(sub), headers=headers).get_json()
        assert one["intake"] is None and len(one["lines"]) == 2

        photo = client.post(
            "/api/v1/agent/intake/photos",
            data={"photo": (BytesIO(jpeg((800, 600))), "p.jpg")},
            headers=headers,
            content_type="multipart/form-data",
        )
        assert photo.status_code == 201, photo.get_json()
        photo_id = photo.get_json()["id"]

        sent = body(sub, **{POMELO: {"weight_g": 900, "photo_id": photo_id}, CHICKEN: {"grade": "rejected"}})
        keyed = {**headers, "Idempotency-Key": "api-intake-key-1"}
        first = client.post(url(sub), json=sent, headers=keyed)
        assert first.status_code == 200, first.get_json()
        got = first.get_json()
        assert got["sub_order_status"] == "handed_in" and got["settlement"] == "refund"
        assert got["goods_fen"] == 8100 and got["difference_fen"] == 900 + 9800
        assert got["refund_status"] == "succeeded" and got["refunded_fen"] == 900 + 9800
        (lot,) = got["lots"]
        assert lot["weight_g"] == 900 and lot["grade"] == "first" and lot["photo_id"] == photo_id
        assert lot["trace_url"].endswith(f"/t/{lot['code']}")

        again = client.post(url(sub), json=sent, headers=keyed)  # a replayed offline submission
        assert again.status_code == 200 and again.get_json()["id"] == got["id"]
        assert count(session, Intake) == 1 and count(session, Refund) == 1 and count(session, Lot) == 1
        other = client.post(url(sub), json=sent, headers={**headers, "Idempotency-Key": "api-intake-key-2"})
        assert_error(other, 409, "already_received")
        assert client.get(url(sub), headers=headers).get_json()["intake"]["id"] == got["id"]

        assert client.get(f"/api/v1/agent/intake/lots/{lot['code']}", headers=headers).status_code == 200
        farmer = bearer(market.shop.meixian_farmer)
        assert client.get(f"/api/v1/agent/intake/lots/{lot['code']}", headers=farmer).status_code == 200
        assert_error(
            client.get(f"/api/v1/agent/intake/lots/{lot['code']}", headers=bearer(market.shop.merchant)), 404
        )
        received = client.get("/api/v1/agent/intake/received", headers=headers).get_json()
        assert [r["id"] for r in received] == [got["id"]]

        trace = client.get(f"/api/v1/trace/{lot['code']}")  # no token: public
        assert trace.status_code == 200
        traced = trace.get_json()
        origin = market.product(POMELO).origin
        assert traced["village"] == origin.name and traced["town"] == origin.parent.name
        assert traced["grade"] == "first" and traced["received_on"] == "2026-11-26"
        assert not {"seller_id", "seller", "buyer", "phone", "sub_order_number"} & set(traced)
        assert traced["verified"] is True and [s["kind"] for s in traced["steps"]] == ["received"]
        assert traced["chain_head"] == traced["steps"][-1]["hash"]
        assert_error(client.get("/api/v1/trace/AAAAAAAAAAAAAAAA"), 404)

    def test_the_body_key_works_as_the_header_does(self, session, client, sub, agent, bearer):
        sent = {**body(sub), "idempotency_key": "api-intake-key-3"}
        first = client.post(url(sub), json=sent, headers=bearer(agent))
        assert first.status_code == 200
        assert (
            client.post(url(sub), json=sent, headers=bearer(agent)).get_json()["id"] == first.get_json()["id"]
        )

    def test_every_path_is_in_the_openapi_document(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        for path, method in [
            ("/api/v1/agent/intake/sub-orders", "get"),
            ("/api/v1/agent/intake/sub-orders/{sub_number}", "get"),
            ("/api/v1/agent/intake/sub-orders/{sub_number}", "post"),
            ("/api/v1/agent/intake/photos", "post"),
            ("/api/v1/agent/intake/received", "get"),
            ("/api/v1/agent/intake/lots/{code}", "get"),
            ("/api/v1/trace/{code}", "get"),
            ("/api/v1/trace/{code}/epcis", "get"),
        ]:
            assert method in paths[path], path
        post = paths["/api/v1/agent/intake/sub-orders/{sub_number}"]["post"]
        assert {"409", "422"} <= set(post["responses"])
        assert any(p.get("name") == "Idempotency-Key" for p in post.get("parameters", []))


class TestBadInput:
    @pytest.mark.parametrize(
        "change",
        [
            {POMELO: {"weight_g": 0}},
            {POMELO: {"weight_g": 10 * 1000}},  # ten times the order
            {POMELO: {"weight_g": -1}},
            {POMELO: {"weight_g": "900"}},
            {POMELO: {"weight_g": 2**70}},
            {POMELO: {"grade": "excellent"}},
            {CHICKEN: {"accepted_quantity": 2}},
            {CHICKEN: {"photo_id": 2**40}},
            {CHICKEN: {"line_id": 0}},
        ],
    )
    def test_refused_with_422_and_nothing_written(self, session, client, sub, agent, bearer, change):
        sent = body(sub, **change)
        resp = client.post(url(sub), json=sent, headers={**bearer(agent), "Idempotency-Key": "api-bad-key-1"})
        assert_error(resp, 422)
        nothing_written(session, sub)

    @pytest.mark.parametrize("sent", [{}, {"lines": []}, {"lines": "x"}, {"lines": [{}]}, [1]])
    def test_a_body_of_the_wrong_shape_is_refused(self, session, client, sub, agent, bearer, sent):
        resp = client.post(url(sub), json=sent, headers={**bearer(agent), "Idempotency-Key": "api-bad-key-1"})
        assert 400 <= resp.status_code < 500
        nothing_written(session, sub)

    def test_no_key_is_refused(self, session, client, sub, agent, bearer):
        assert_error(client.post(url(sub), json=body(sub), headers=bearer(agent)), 422)
        nothing_written(session, sub)

    def test_a_photo_another_agent_uploaded_is_refused(
        self, session, client, sub, agent, bearer, make_user, point
    ):
        other = make_user(Role.AGENT, node_id=point.id, name="另一个村小二")
        photo = client.post(
            "/api/v1/agent/intake/photos",
            data={"photo": (BytesIO(jpeg((800, 600))), "p.jpg")},
            headers=bearer(other),
            content_type="multipart/form-data",
        ).get_json()
        sent = body(sub, **{POMELO: {"photo_id": photo["id"]}})
        resp = client.post(url(sub), json=sent, headers={**bearer(agent), "Idempotency-Key": "api-bad-key-2"})
        data = assert_error(resp, 422)
        assert any(k.startswith("photo-") for k in data.get("errors", {})), data
        nothing_written(session, sub)

    def test_who_may_not(self, session, client, market, sub, bearer, make_user, village_point):
        elsewhere = make_user(Role.AGENT, node_id=village_point(YINGDE).id, name="英德村小二")
        keyed = {"Idempotency-Key": "api-bad-key-3"}
        assert_error(client.post(url(sub), json=body(sub), headers={**bearer(elsewhere), **keyed}), 404)
        assert_error(client.get(url(sub), headers=bearer(elsewhere)), 404)
        for who in (market.shop.meixian_farmer, market.buyer):
            assert_error(client.post(url(sub), json=body(sub), headers={**bearer(who), **keyed}), 403)
        assert_error(client.get("/api/v1/agent/intake/sub-orders", headers=bearer(market.buyer)), 403)
        assert_error(client.post(url(sub), json=body(sub), headers=keyed), 401)
        assert_error(
            client.post(
                "/api/v1/agent/intake/photos",
                data={"photo": (BytesIO(jpeg((800, 600))), "p.jpg")},
                headers=bearer(market.buyer),
                content_type="multipart/form-data",
            ),
            403,
        )
        nothing_written(session, sub)

    def test_not_accepted_is_a_conflict(
        self, session, client, market, checkout_settings, gateway, point, agent, bearer
    ):
        order = market.pay(market.place({POMELO: 1}, checkout_settings), gateway)
        (paid,) = order.sub_orders
        resp = client.post(
            url(paid), json=body(paid), headers={**bearer(agent), "Idempotency-Key": "api-bad-key-4"}
        )
        assert_error(resp, 409, "not_receivable")
        assert fresh(session, paid).status == S.PAID
