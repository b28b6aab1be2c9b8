"""Issue 13 on PostgreSQL under real concurrency, each checkout in its own connection: a flash
sale's crowd never oversells its quota (with the Redis gate in front and without it), one buyer's
parallel checkouts never beat the per-buyer limit, and parallel checkouts never overspend a
campaign's subsidy budget."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import Campaign, CampaignHold, CampaignItem, OrderLine, Product, Role, clock
from services import accounts, catalog, places
from services.campaigns import gate, manage
from services.errors import Conflict
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from tests.conftest import MEIXIAN, TEST_PASSWORD, backend, next_phone, reachable_redis
from tests.integration.test_checkout_concurrency import race_engine  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="row locks under concurrency: PostgreSQL")

SETTINGS = CheckoutSettings(
    max_unpaid_orders=0, max_unpaid_units=0, max_unpaid_units_per_product=0, order_rate_limit=0
)
RUNNING = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # inside the window below


def _world(engine, *, quota, limit, budget_yuan="0", platform="0", tiers=""):  # type: ignore[no-untyped-def]
    from seed.loader import read_json

    with Session(engine, expire_on_commit=False) as session:
        if not catalog.categories(session):
            catalog.import_categories(session, read_json("categories.json"))
        village = session.scalars(
            select(places.Division.code)
            .where(places.Division.parent_code.like(f"{MEIXIAN}%"), func.length(places.Division.code) == 12)
            .order_by(places.Division.code)
        ).first()
        admin = accounts.create_user(session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.ADMIN,))
        farmer = accounts.create_user(
            session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.FARMER,)
        )
        catalog.save_seller_profile(session, farmer, shop_name="荔枝园", division_code=village)
        category = next(c.id for c in catalog.categories(session) if c.slug == "lychee-longan")
        product = catalog.create_product(
            session,
            farmer,
            catalog.ListingInput(
                name="妃子笑荔枝", category_id=category, unit="jin", price_fen=3980, stock=10_000
            ),
            publish=True,
        )
        made = manage.create_campaign(
            session,
            admin,
            manage.CampaignInput(
                name=f"秒杀{uuid.uuid4().hex[:6]}",
                starts_at="2026-11-27 10:00:00",
                ends_at="2026-11-27 12:00:00",
                platform_percent=platform,
                budget_yuan=budget_yuan,
                tiers=tiers,
            ),
        )
        manage.publish(session, admin, made.id)
        item = manage.sign_up(
            session,
            farmer,
            made.id,
            product.id,
            manage.SignupInput(
                campaign_price_yuan="9.90", quota=str(quota) if quota else "", per_buyer_limit=limit
            ),
        )
        manage.decide(session, admin, item.id, True)
        return product.id, made.id, item.id, str(village)


def _buyers(engine, n):  # type: ignore[no-untyped-def]
    with Session(engine, expire_on_commit=False) as session:
        return [
            accounts.create_user(session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.BUYER,)).id
            for _ in range(n)
        ]


def _order(product_id, village, quantity, expected, flash_items=(), key=None):  # type: ignore[no-untyped-def]
    return CheckoutInput(
        items={product_id: quantity},
        idempotency_key=key or f"flash-{uuid.uuid4().hex}",
        expected_total_fen=expected,
        flash_items=flash_items,
        address=AddressInput(
            recipient="买家", phone="13912345678", division_code=village, detail="幸福路8号"
        ),
    )


def _race(engine, product_id, village, buyer_ids, quantity, expected, flash_items=()):  # type: ignore[no-untyped-def]
    start = threading.Barrier(len(buyer_ids))

    def buy(buyer_id: int) -> str:
        with Session(engine, expire_on_commit=False) as session:
            buyer = session.get(accounts.User, buyer_id)
            data = _order(product_id, village, quantity, expected, flash_items)
            session.commit()
            start.wait()
            try:
                checkout.place_order(session, buyer, data, SETTINGS)
            except Conflict as exc:
                return exc.code
            return "placed"

    with clock.frozen(RUNNING), ThreadPoolExecutor(max_workers=len(buyer_ids)) as pool:
        return list(pool.map(buy, buyer_ids))


def _sold_at_campaign_price(engine, product_id):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.scalar(
            select(func.coalesce(func.sum(OrderLine.discounted_units), 0)).where(
                OrderLine.product_id == product_id
            )
        )


EXPECTED_ONE = 990 + 800  # ¥9.90 and the ambient parcel's shipping for one 斤 to the door


@pytest.mark.parametrize("with_gate", [True, False], ids=["redis-gate", "database-only"])
def test_a_crowd_never_oversells_the_quota(race_engine, with_gate):  # type: ignore[no-untyped-def]  # noqa: F811
    product_id, _campaign_id, item_id, village = _world(race_engine, quota=15, limit="")
    buyers = _buyers(race_engine, 60)
    client = redis.Redis(host="127.0.0.1", port=6379)
    previous = gate.install(gate.RedisGate(client, prefix=f"test:{uuid.uuid4().hex}:") if with_gate else None)
    try:
        results = _race(race_engine, product_id, village, buyers, 1, EXPECTED_ONE)
    finally:
        gate.install(previous)
    assert results.count("placed") == 15
    assert set(results) <= {"placed", "campaign_quota_gone", "price_changed"}
    assert _sold_at_campaign_price(race_engine, product_id) == 15
    with Session(race_engine) as session:
        assert session.get(CampaignItem, item_id).quota_used == 15
        assert session.get(Product, product_id).stock == 10_000 - 15


def test_after_the_last_unit_a_flash_sale_checkout_is_refused_before_it_is_priced(race_engine):  # type: ignore[no-untyped-def]  # noqa: F811
    """The crowd says which flash-sale price it buys at (the cart's flash_item_id): with the gate's
    counter at 0 it is refused at once, and the database still sells exactly the quota."""
    from sqlalchemy import event

    from domain import Order

    product_id, _campaign_id, item_id, village = _world(race_engine, quota=10, limit="1")
    buyers = _buyers(race_engine, 40)
    client = redis.Redis(host="127.0.0.1", port=6379)
    previous = gate.install(gate.RedisGate(client, prefix=f"test:{uuid.uuid4().hex}:"))
    try:
        results = _race(race_engine, product_id, village, buyers, 1, EXPECTED_ONE, flash_items=[item_id])
        assert results.count("placed") == 10
        assert set(results) <= {"placed", "campaign_quota_gone", "price_changed"}
        with Session(race_engine) as session:
            assert gate.current().sold_out(session, [item_id])

        late = buyers[-1]
        with Session(race_engine) as session:
            first_id, placed_key = session.execute(
                select(Order.buyer_id, Order.idempotency_key).where(Order.buyer_id.in_(buyers)).limit(1)
            ).one()
        statements: list[str] = []

        def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(race_engine, "before_cursor_execute", seen)
        try:
            with clock.frozen(RUNNING), Session(race_engine) as session:
                buyer = session.get(accounts.User, late)
                statements.clear()
                with pytest.raises(Conflict) as refused:
                    checkout.place_order(
                        session, buyer, _order(product_id, village, 1, EXPECTED_ONE, [item_id]), SETTINGS
                    )
                assert refused.value.code == "campaign_quota_gone"
                # The buyer's row lock and the idempotency lookup: the cart was never priced.
                assert not any("products" in s or "campaign" in s for s in statements)
        finally:
            event.remove(race_engine, "before_cursor_execute", seen)
        with clock.frozen(RUNNING), Session(race_engine) as session:
            # A retry of a placed order's checkout still gets its order, not the refusal.
            first = session.get(accounts.User, first_id)
            again = checkout.place_order(
                session, first, _order(product_id, village, 1, EXPECTED_ONE, [item_id], placed_key), SETTINGS
            )
            assert again.created is False
            # Without the claim the product still sells, at its list price.
            buyer = session.get(accounts.User, late)
            listed = checkout.place_order(session, buyer, _order(product_id, village, 1, None), SETTINGS)
            assert listed.created and listed.order.items_fen == 3980
    finally:
        gate.install(previous)
    assert _sold_at_campaign_price(race_engine, product_id) == 10
    with Session(race_engine) as session:
        assert session.get(CampaignItem, item_id).quota_used == 10


def test_one_buyers_parallel_checkouts_never_beat_the_limit(race_engine):  # type: ignore[no-untyped-def]  # noqa: F811
    product_id, _campaign_id, item_id, village = _world(race_engine, quota=None, limit="2")
    buyer = _buyers(race_engine, 1)[0]
    results = _race(race_engine, product_id, village, [buyer] * 6, 1, EXPECTED_ONE)
    assert results.count("placed") == 2
    assert set(results) == {"placed", "price_changed"}
    with Session(race_engine) as session:
        held = session.scalar(select(func.sum(CampaignHold.units)).where(CampaignHold.item_id == item_id))
        assert held == 2


def test_parallel_checkouts_never_overspend_the_budget(race_engine):  # type: ignore[no-untyped-def]  # noqa: F811
    # 满20减5, the platform's, ¥30 of budget: six orders of 3 斤 at ¥9.90 (¥29.70) can be subsidised.
    product_id, campaign_id, _item_id, village = _world(
        race_engine, quota=None, limit="", budget_yuan="30", platform="100", tiers="满20减5"
    )
    buyers = _buyers(race_engine, 20)
    expected = 3 * 990 - 500 + 1000  # the goods, the tier, shipping for 3 斤 (¥8 + ¥2 a started kg)
    results = _race(race_engine, product_id, village, buyers, 3, expected)
    with Session(race_engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.subsidy_used_fen == 3000
        assert campaign.subsidy_used_fen <= campaign.budget_fen
    assert results.count("placed") == 6
    assert set(results) <= {"placed", "price_changed", "campaign_budget_gone"}


def test_the_door_answers_the_crowd_after_the_last_unit_without_the_app(race_engine, localstripe):  # type: ignore[no-untyped-def]  # noqa: F811
    """Through the API with the door in front (marketplace/flash_door.py): a checkout let in
    that fails gives its unit back; a crowd of 18 on 5 units places exactly 5; after the last
    unit a checkout gets the app's own 409 with no database statement; a repeat of a placed
    checkout still gets its order; a crowd at an expired counter costs one read of the quota."""
    from sqlalchemy import event

    from marketplace import create_app
    from marketplace.config import TestingConfig
    from marketplace.flash_door import FlashDoor

    product_id, _campaign_id, item_id, village = _world(race_engine, quota=5, limit="1")
    buyers = _buyers(race_engine, 20)
    with Session(race_engine) as session:
        phones = [session.get(accounts.User, b).phone for b in buyers]  # type: ignore[union-attr]
        tokens = [
            accounts.issue_api_token(session, phone=p, password=TEST_PASSWORD, policy=accounts.AuthPolicy())[
                0
            ]
            for p in phones
        ]
    config = TestingConfig()
    config.DATABASE_URL = race_engine.url.render_as_string(hide_password=False)
    config.REDIS_URL = reachable_redis("redis://127.0.0.1:6379/15")
    config.STRIPE_API_BASE = localstripe.url
    config.STRIPE_SECRET_KEY = localstripe.secret_key
    previous = gate.current()
    app = create_app(config)
    door_gate = gate.current()
    try:
        assert isinstance(app.wsgi_app, FlashDoor)
        counter = door_gate._key(item_id)  # type: ignore[attr-defined]
        door_gate.client.delete(counter)  # type: ignore[attr-defined]

        def post(i, expected=EXPECTED_ONE, key=None):  # type: ignore[no-untyped-def]
            body = {
                "items": [{"product_id": product_id, "quantity": 1}],
                "idempotency_key": key or f"door-{uuid.uuid4().hex}",
                "expected_total_fen": expected,
                "flash_items": [item_id],
                "payment_method": "card",
                "delivery": "home",
                "address": {
                    "recipient": "买家",
                    "phone": "13912345678",
                    "division_code": village,
                    "detail": "幸福路8号",
                },
            }
            resp = app.test_client().post(
                "/api/v1/orders", json=body, headers={"Authorization": f"Bearer {tokens[i]}"}
            )
            return resp.status_code, resp.get_json(), body["idempotency_key"]

        def at_once(buyers):  # type: ignore[no-untyped-def]
            """These buyers' checkouts, let go at one moment."""
            start = threading.Barrier(len(buyers))

            def one(i):  # type: ignore[no-untyped-def]
                start.wait()
                return post(i)

            with ThreadPoolExecutor(max_workers=len(buyers)) as pool:
                return list(pool.map(one, buyers))

        with clock.frozen(RUNNING):
            # No counter yet: the app reads the quota (and refuses the wrong total).
            assert post(0, expected=1)[1]["code"] == "price_changed"
            assert int(door_gate.client.get(counter)) == 5  # type: ignore[attr-defined]
            # Let in by the door (a unit taken), refused by the app: the unit comes back.
            assert post(1, expected=1)[1]["code"] == "price_changed"
            assert int(door_gate.client.get(counter)) == 5  # type: ignore[attr-defined]

            answers = at_once(range(2, 20))
        placed = [a for a in answers if a[0] == 201]
        assert len(placed) == 5
        assert {a[1]["code"] for a in answers if a[0] != 201} <= {"campaign_quota_gone", "price_changed"}
        assert int(door_gate.client.get(counter)) == 0  # type: ignore[attr-defined]

        engine = app.extensions["database"].engine
        statements: list[str] = []

        def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            with clock.frozen(RUNNING):
                status, refused, _key = post(0)
                assert status == 409 and refused["code"] == "campaign_quota_gone"
                assert refused["message"] == "该商品的活动价已抢光，请确认新价格。"
                assert statements == []  # answered at the door: no database
                # A repeat of a placed checkout (its token and key) goes on to its order.
                first = answers.index(placed[0]) + 2
                status, again, _key = post(first, key=placed[0][2])
                assert status == 200 and again["number"] == placed[0][1]["number"]

                # The counter expired (or was never set) when a crowd arrives: the door reads the
                # quota itself, once for all of them, and still answers them without the app.
                door_gate.client.delete(counter)  # type: ignore[attr-defined]
                statements.clear()
                late_answers = at_once(range(10, 18))
                assert {(a[0], a[1]["code"]) for a in late_answers} == {(409, "campaign_quota_gone")}
                assert len(statements) == 1 and "FROM campaign_items" in statements[0]
                assert int(door_gate.client.get(counter)) == 0  # type: ignore[attr-defined]
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    finally:
        gate.install(previous)
        app.extensions["database"].engine.dispose()
    assert _sold_at_campaign_price(race_engine, product_id) == 5
