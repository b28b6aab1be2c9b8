"""Parcels at the village point over the API (issue 11, items 4 and 10): list, mark arrived, hand
over with the code or a reason; every write keyed and applied once; bad input a 4xx with a
message, never a 500; the operations are in the OpenAPI document."""

from __future__ import annotations

import pytest

from domain import OrderStatus, ParcelHandover, PickupCode, Role, SubOrder
from services import parcels
from services.orders import checkout
from tests.conftest import YINGDE, count
from tests.factories import pickup_code_of, pickup_parcel_in_transit

S = OrderStatus
LIST = "/api/v1/agent/parcels"
ARRIVED = "/api/v1/agent/parcels/arrived"


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


class TestListAndArrive:
    def test_list_then_arrive_by_number_once(self, session, client, bearer, agent, on_the_way):
        headers = bearer(agent)
        body = client.get(LIST, headers=headers).get_json()
        assert [p["number"] for p in body["arriving"]] == [on_the_way.number] and body["waiting"] == []
        assert (body["remind_days"], body["return_days"]) == (parcels.REMIND_DAYS, parcels.RETURN_DAYS)
        assert body["arriving"][0]["recipient_phone"] == "139****5678"
        for _ in range(2):
            resp = client.post(
                ARRIVED,
                json={"number": on_the_way.number},
                headers={**headers, "Idempotency-Key": "arrive-0001"},
            )
            assert resp.status_code == 200, resp.get_json()
            assert resp.get_json()["status"] == "ready_for_pickup" and resp.get_json()["age_days"] == 0
        waiting = client.get(LIST, headers=headers).get_json()["waiting"]
        assert [(p["number"], p["flagged"], p["handover"]) for p in waiting] == [
            (on_the_way.number, False, None)
        ]

    def test_bad_input_is_a_4xx(self, session, client, bearer, agent, other_agent, market, on_the_way):
        headers = bearer(agent)
        cases = [
            ({"idempotency_key": key()}, 422),  # no number
            ({"number": "", "idempotency_key": key()}, 422),
            ({"number": on_the_way.number}, 422),  # no key
            ({"number": on_the_way.number, "idempotency_key": "short"}, 422),
            ({"number": on_the_way.number, "idempotency_key": key(), "extra": 1}, 422),
            ({"number": "x" * 41, "idempotency_key": key()}, 422),
            ({"number": 12345, "idempotency_key": key()}, 422),
            ({"number": "2026010100000000-1", "idempotency_key": key()}, 404),
        ]
        for body, status in cases:
            resp = client.post(ARRIVED, json=body, headers=headers)
            assert resp.status_code == status, (body, resp.get_json())
            assert resp.get_json()["message"]
        stranger = client.post(
            ARRIVED, json={"number": on_the_way.number, "idempotency_key": key()}, headers=bearer(other_agent)
        )
        assert stranger.status_code == 404
        assert (
            client.post(
                ARRIVED,
                json={"number": on_the_way.number, "idempotency_key": key()},
                headers=bearer(market.buyer),
            ).status_code
            == 403
        )
        assert client.get(LIST).status_code == 401
        assert client.get(LIST, headers=bearer(market.buyer)).status_code == 403
        assert status_of(session, on_the_way) == S.IN_TRANSIT

    def test_one_parcel_and_its_refusals(self, client, bearer, agent, other_agent, waiting):
        one = client.get(f"{LIST}/{waiting.number}", headers=bearer(agent))
        assert one.status_code == 200 and one.get_json()["status"] == "ready_for_pickup"
        assert client.get(f"{LIST}/{waiting.number}", headers=bearer(other_agent)).status_code == 404
        assert client.get(f"{LIST}/nothing-here", headers=bearer(agent)).status_code == 404


class TestHandover:
    def url(self, sub: SubOrder) -> str:
        return f"{LIST}/{sub.number}/handover"

    def test_with_the_code_once(self, session, client, bearer, agent, waiting, pickup_keys):
        headers = bearer(agent)
        code = pickup_code_of(session, waiting.order, pickup_keys)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post(
            self.url(waiting), json={"pickup_code": wrong, "idempotency_key": "hand-0001"}, headers=headers
        )
        assert resp.status_code == 422 and resp.get_json()["code"] == "wrong_pickup_code"
        first = client.post(
            self.url(waiting), json={"pickup_code": code, "idempotency_key": "hand-0001"}, headers=headers
        )
        assert first.status_code == 200, first.get_json()
        row = first.get_json()
        assert (row["method"], row["sub_order_number"], row["handed_by_id"]) == (
            "code",
            waiting.number,
            agent.id,
        )
        again = client.post(
            self.url(waiting), json={"pickup_code": code, "idempotency_key": "hand-0001"}, headers=headers
        )
        assert again.status_code == 200 and again.get_json()["id"] == row["id"]
        other = client.post(
            self.url(waiting), json={"pickup_code": code, "idempotency_key": "hand-0002"}, headers=headers
        )
        assert other.status_code == 409 and other.get_json()["code"] == "already_collected"
        assert status_of(session, waiting) == S.COMPLETED and count(session, ParcelHandover) == 1
        shown = client.get(f"{LIST}/{waiting.number}", headers=headers).get_json()
        assert shown["status"] == "completed" and shown["handover"]["id"] == row["id"]

    def test_brute_force_locks_the_code(self, session, client, bearer, agent, waiting, pickup_keys):
        headers = bearer(agent)
        code = pickup_code_of(session, waiting.order, pickup_keys)
        guesses = [f"{n:06d}" for n in range(10) if f"{n:06d}" != code][:6]
        answers = [
            client.post(self.url(waiting), json={"pickup_code": g, "idempotency_key": key()}, headers=headers)
            for g in guesses
        ]
        assert [a.status_code for a in answers] == [422, 422, 422, 422, 409, 409]
        assert answers[-1].get_json()["code"] == "pickup_code_locked"
        session.expire_all()
        assert (
            session.query(PickupCode.attempts).filter(PickupCode.order_id == waiting.order_id).scalar() == 5
        )
        assert status_of(session, waiting) == S.READY_FOR_PICKUP

    def test_without_the_code(self, session, client, bearer, agent, waiting):
        headers = bearer(agent)
        bad = [
            ({"idempotency_key": key()}, 422),  # neither code nor reason
            ({"reason": "bribe", "collected_by": "某人", "idempotency_key": key()}, 422),
            ({"reason": "id_card", "idempotency_key": key()}, 422),  # no name
            ({"reason": "id_card", "collected_by": "某" * 41, "idempotency_key": key()}, 422),
            ({"reason": "id_card", "collected_by": "陈小姐"}, 422),  # no key
            (
                {
                    "reason": "id_card",
                    "collected_by": "陈小姐",
                    "cash_received": "maybe",
                    "idempotency_key": key(),
                },
                422,
            ),
            (
                {
                    "reason": "id_card",
                    "collected_by": "陈小姐",
                    "pickup_code": "1" * 17,
                    "idempotency_key": key(),
                },
                422,
            ),
        ]
        for body, status in bad:
            resp = client.post(self.url(waiting), json=body, headers=headers)
            assert resp.status_code == status, (body, resp.get_json())
        assert status_of(session, waiting) == S.READY_FOR_PICKUP and count(session, ParcelHandover) == 0
        ok = client.post(
            self.url(waiting),
            json={"reason": "known_villager", "reason_text": "邻居", "collected_by": "陈小姐"},
            headers={**headers, "Idempotency-Key": "hand-reason-01"},
        )
        assert ok.status_code == 200, ok.get_json()
        assert (ok.get_json()["method"], ok.get_json()["reason"]) == ("reason", "known_villager")

    def test_refusals_for_other_people_and_states(
        self, session, client, bearer, other_agent, agent, on_the_way, market
    ):
        body = {"reason": "id_card", "collected_by": "陈小姐", "idempotency_key": key()}
        assert client.post(self.url(on_the_way), json=body, headers=bearer(other_agent)).status_code == 404
        assert client.post(self.url(on_the_way), json=body, headers=bearer(market.buyer)).status_code == 404
        not_yet = client.post(self.url(on_the_way), json=body, headers=bearer(agent))
        assert not_yet.status_code == 409 and not_yet.get_json()["code"] == "illegal_transition"
        assert client.post(f"{LIST}/nope/handover", json=body, headers=bearer(agent)).status_code == 404
        assert client.post(self.url(on_the_way), json=body).status_code == 401
        assert count(session, ParcelHandover) == 0


def test_the_operations_are_documented(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/api/v1/agent/parcels"])
    assert {"post"} <= set(paths["/api/v1/agent/parcels/arrived"])
    assert {"get"} <= set(paths["/api/v1/agent/parcels/{sub_number}"])
    handover = paths["/api/v1/agent/parcels/{sub_number}/handover"]["post"]
    assert {"200", "401", "404", "409", "422"} <= set(handover["responses"])
