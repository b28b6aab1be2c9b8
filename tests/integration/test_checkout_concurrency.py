"""200 buyers race for the last 50 units on PostgreSQL, each in their own connection and
transaction, as gunicorn threads and processes would: exactly 50 orders are placed, stock ends
at 0 and never below, every paid order is in the ledger, and the ledger balances.

Row locks under real concurrency are a property of the PostgreSQL server, so this module runs
there (`make test` runs it in its PostgreSQL pass); SQLite serialises all writers anyway.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import Order, OrderStatus, PaymentStatus, Product, Role, StockReservation, SubOrder
from marketplace.db import make_engine
from services import accounts, catalog, ledger, places
from services.orders import checkout, lookup
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput, OutOfStock
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from tests.conftest import MEIXIAN, SEED_DATA, TEST_PASSWORD, backend, migrate, next_phone

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="row locking under concurrency is tested on PostgreSQL"
)

BUYERS = 200
UNITS = 50
SETTINGS = CheckoutSettings()


@pytest.fixture(scope="module")
def race_engine(new_database):  # type: ignore[no-untyped-def]
    url = new_database("race")
    migrate(url)
    # The app's own engine settings: a bounded pool that the 200 in-flight checkouts share,
    # each holding a connection only for its transaction, as gunicorn threads would.
    engine = make_engine(url)
    with Session(engine) as session:
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
    yield engine
    engine.dispose()


def _setup(engine) -> tuple[int, list[int], str]:  # type: ignore[no-untyped-def]
    from seed.loader import read_json

    with Session(engine, expire_on_commit=False) as session:
        catalog.import_categories(session, read_json("categories.json"))
        village = session.scalars(
            select(places.Division.code)
            .where(places.Division.parent_code.like(f"{MEIXIAN}%"), func.length(places.Division.code) == 12)
            .order_by(places.Division.code)
        ).first()
        farmer = accounts.create_user(
            session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.FARMER,)
        )
        catalog.save_seller_profile(session, farmer, shop_name="梅县柚园", division_code=village)
        category = next(c.id for c in catalog.categories(session) if c.slug == "citrus")
        product = catalog.create_product(
            session,
            farmer,
            catalog.ListingInput(
                name="梅县金柚", category_id=category, unit="jin", price_fen=4500, stock=UNITS
            ),
            publish=True,
        )
        buyers = [
            accounts.create_user(session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.BUYER,)).id
            for _ in range(BUYERS)
        ]
        return product.id, buyers, str(village)


def test_200_buyers_race_for_50_units(race_engine, gateway):  # type: ignore[no-untyped-def]
    product_id, buyer_ids, village = _setup(race_engine)
    start = threading.Barrier(BUYERS)

    def buy(buyer_id: int) -> str:
        with Session(race_engine, expire_on_commit=False) as session:
            buyer = session.get(accounts.User, buyer_id)
            data = CheckoutInput(
                items={product_id: 1},
                idempotency_key=f"race-{buyer_id}-0001",
                address=AddressInput(
                    recipient="买家", phone="13912345678", division_code=village, detail="幸福路8号"
                ),
            )
            session.commit()  # hand the connection back: only the checkout itself may hold one
            start.wait()
            try:
                placed = checkout.place_order(session, buyer, data, SETTINGS)
            except OutOfStock:
                return "sold out"
            return placed.order.number

    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        results = list(pool.map(buy, buyer_ids))

    numbers = [r for r in results if r != "sold out"]
    assert len(numbers) == UNITS
    assert results.count("sold out") == BUYERS - UNITS
    with Session(race_engine) as session:
        product = session.get(Product, product_id)
        assert product is not None
        assert (product.stock, product.reserved) == (0, UNITS)
        assert session.scalar(select(func.count()).select_from(Order)) == UNITS
        assert session.scalar(select(func.sum(StockReservation.quantity))) == UNITS

    # Pay every placed order (a few at a time: localstripe is a functional server, not a fast one).
    def pay(number: str) -> None:
        with Session(race_engine, expire_on_commit=False) as session:
            order = lookup.get_order(session, number)
            payments.confirm_with(session, gateway, order, "pm_card_visa")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(pay, numbers))

    with Session(race_engine) as session:
        product = session.get(Product, product_id)
        assert product is not None
        assert (product.stock, product.reserved, product.sales_count) == (0, 0, UNITS)
        statuses = session.scalars(select(SubOrder.status)).all()
        assert statuses == [OrderStatus.PAID] * UNITS
        paid = session.scalars(select(payments.Payment.status)).all()
        assert set(paid) == {PaymentStatus.SUCCEEDED}
        assert ledger.trial_balance(session) == 0
        total = session.scalar(select(func.sum(Order.total_fen)))
        assert ledger.balance(session, "buyer_payments_clearing") == total


PARALLEL = 8


def test_one_buyer_cannot_pass_the_unpaid_cap_with_parallel_checkouts(race_engine):  # type: ignore[no-untyped-def]
    """Issue 9, finding 4: the caps are counted under a lock on the buyer's row, so checkouts of
    one buyer that run at once are counted one after the other: exactly the cap gets through."""
    from services.errors import Conflict

    product_id, buyer_ids, village = _setup(race_engine)
    settings = SETTINGS  # the defaults: at most 3 unpaid orders, 10 orders in 10 minutes
    buyer_id = buyer_ids[0]
    start = threading.Barrier(PARALLEL)

    def buy(n: int) -> str:
        with Session(race_engine, expire_on_commit=False) as session:
            buyer = session.get(accounts.User, buyer_id)
            data = CheckoutInput(
                items={product_id: 1},
                idempotency_key=f"cap-{buyer_id}-{n:04d}",
                address=AddressInput(
                    recipient="买家", phone="13912345678", division_code=village, detail="幸福路8号"
                ),
            )
            session.commit()
            start.wait()
            try:
                return checkout.place_order(session, buyer, data, settings).order.number
            except Conflict:
                return "capped"

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(buy, range(PARALLEL)))

    assert results.count("capped") == PARALLEL - 3
    with Session(race_engine) as session:
        placed = session.scalar(select(func.count()).select_from(Order).where(Order.buyer_id == buyer_id))
        assert placed == 3
        product = session.get(Product, product_id)
        assert product is not None and (product.stock, product.reserved) == (UNITS - 3, 3)
