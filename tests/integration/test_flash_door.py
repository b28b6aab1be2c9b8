"""The flash sale's door (marketplace/flash_door.py) with the real Redis, on either database: what
it answers itself and what it leaves to the app. The crowd through the door on PostgreSQL is in
tests/integration/test_campaign_concurrency.py."""

from __future__ import annotations

import uuid

import pytest

from marketplace import create_app
from marketplace.config import TestingConfig
from marketplace.flash_door import FlashDoor
from services.campaigns import gate
from tests.conftest import reachable_redis

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture()
def door_app(database_url, session):  # type: ignore[no-untyped-def]
    reachable_redis(REDIS_URL)
    config = TestingConfig()
    config.DATABASE_URL = database_url
    config.REDIS_URL = REDIS_URL
    previous = gate.current()
    app = create_app(config)
    app.extensions["database"].lend_session(session)
    door = gate.current()
    yield app, door
    gate.install(previous)
    app.extensions["database"].engine.dispose()


def _body(item_ids: list[object], key: str = "") -> dict[str, object]:
    return {
        "items": [{"product_id": 1, "quantity": 1}],
        "idempotency_key": key or uuid.uuid4().hex,
        "flash_items": item_ids,
        "payment_method": "card",
        "delivery": "home",
    }


def test_a_sold_out_claim_is_answered_at_the_door_in_the_clients_language(door_app):  # type: ignore[no-untyped-def]
    app, door = door_app
    assert isinstance(app.wsgi_app, FlashDoor)
    item_id = 900_000 + uuid.uuid4().int % 100_000  # a counter only: the door never asks the database
    door.client.set(door._key(item_id), 0, ex=60)
    try:
        client = app.test_client()
        headers = {"Authorization": "Bearer gdm_not-checked-at-the-door", "Accept-Language": "en-US,en;q=0.9"}
        resp = client.post("/api/v1/orders", json=_body([item_id]), headers=headers)
        assert resp.status_code == 409
        assert resp.get_json() == {
            "code": "campaign_quota_gone",
            "message": "The campaign price of this product has sold out. Please check the new price.",
        }
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        # Units left: the door takes one for the checkout and lets it on to the app, which
        # checks the token (this one is no token: 401); the unit it never used comes back.
        door.client.set(door._key(item_id), 3, ex=60)
        resp = client.post("/api/v1/orders", json=_body([item_id]), headers=headers)
        assert resp.status_code == 401
        assert int(door.client.get(door._key(item_id))) == 3
    finally:
        door.client.delete(door._key(item_id))


@pytest.mark.parametrize(
    "headers,body",
    [
        ({}, "claims"),  # no token: the app's 401
        ({"Authorization": "Bearer x"}, "not json"),
        ({"Authorization": "Bearer x"}, "bad ids"),
    ],
    ids=["no-token", "not-json", "bad-ids"],
)
def test_what_the_door_cannot_read_goes_on_to_the_app(door_app, headers, body):  # type: ignore[no-untyped-def]
    app, door = door_app
    item_id = 900_000 + uuid.uuid4().int % 100_000
    door.client.set(door._key(item_id), 0, ex=60)
    try:
        client = app.test_client()
        if body == "not json":
            resp = client.post(
                "/api/v1/orders", data="{", headers={**headers, "Content-Type": "application/json"}
            )
        else:
            claimed = [item_id] if body == "claims" else [item_id, "x"]
            resp = client.post("/api/v1/orders", json=_body(claimed), headers=headers)
        # Whatever the app answers, it is the app's answer, not the door's sold-out refusal.
        assert resp.status_code in (400, 401, 422)
        assert resp.get_json()["code"] != "campaign_quota_gone"
        assert int(door.client.get(door._key(item_id))) == 0
    finally:
        door.client.delete(door._key(item_id))
