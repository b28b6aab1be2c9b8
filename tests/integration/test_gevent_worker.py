"""The production web shape on PostgreSQL (docs/deploy.md): gunicorn's gevent workers. One worker
is one OS thread serving many requests, so everything a request waits on must let the others run:
psycopg 3 waits cooperatively once gevent has patched the standard library, and requests (the
payment gateway) and redis-py talk through the patched sockets.

The test holds a product's row lock from outside, so a checkout of it waits inside PostgreSQL (in
psycopg); meanwhile the same single worker must answer another request that reads the database.
A driver that blocked the worker's thread would leave that second request unanswered until the
lock is let go. Then the checkout finishes, paid through the real localstripe.

PostgreSQL only: SQLite's calls block the thread (its busy wait is inside the C library), which is
why `make run` (SQLite) keeps gthread workers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from domain import Order, Role
from marketplace.db import make_engine
from services import accounts, catalog, places
from tests.conftest import MEIXIAN, PROJECT_ROOT, SEED_DATA, TEST_PASSWORD, backend, migrate, next_phone
from tests.factories import first_village

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="gevent workers serve PostgreSQL deployments"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def shop(new_database) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """A migrated database with Guangdong's divisions, one farmer's product and one buyer."""
    from seed.loader import read_json

    url = new_database("gevent")
    migrate(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
        catalog.import_categories(session, read_json("categories.json"))
        village = first_village(session, MEIXIAN).code
        farmer = accounts.create_user(
            session, phone=next_phone(), password=TEST_PASSWORD, roles=(Role.FARMER,)
        )
        catalog.save_seller_profile(session, farmer, shop_name="梅县柚园", division_code=village)
        category = next(c.id for c in catalog.categories(session) if c.slug == "citrus")
        product = catalog.create_product(
            session,
            farmer,
            catalog.ListingInput(name="梅县金柚", category_id=category, unit="jin", price_fen=4500, stock=10),
            publish=True,
        )
        buyer_phone = next_phone()
        accounts.create_user(session, phone=buyer_phone, password=TEST_PASSWORD, roles=(Role.BUYER,))
        session.commit()
        yield {
            "url": url,
            "engine": engine,
            "product_id": product.id,
            "village": village,
            "phone": buyer_phone,
        }
    engine.dispose()


@pytest.fixture(scope="module")
def gevent_server(shop, localstripe, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app under gunicorn with ONE gevent worker, as docs/deploy.md runs it."""
    import sys

    instance = tmp_path_factory.mktemp("gevent-instance")
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=str(shop["url"]),
        INSTANCE_PATH=str(instance),
        SECRET_KEY="gevent-test-" + uuid.uuid4().hex,
        STRIPE_API_BASE=localstripe.url,
        STRIPE_SECRET_KEY=localstripe.secret_key,
        RATELIMIT_STORAGE_URI="memory://",
    )
    log_path = instance / "gunicorn.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--worker-class",
                "gevent",
                "--worker-connections",
                "20",
                "wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/api/v1/categories", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gunicorn with a gevent worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=15)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


def test_a_checkout_waiting_on_a_row_lock_leaves_the_worker_free(shop, gevent_server):  # type: ignore[no-untyped-def]
    base = gevent_server
    token = requests.post(
        base + "/api/v1/auth/tokens", json={"phone": shop["phone"], "password": TEST_PASSWORD}, timeout=30
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "items": [{"product_id": shop["product_id"], "quantity": 1}],
        "idempotency_key": "gevent-" + uuid.uuid4().hex,
        "payment_method": "card",
        "delivery": "home",
        "address": {
            "recipient": "陈小姐",
            "phone": "13912345678",
            "division_code": shop["village"],
            "detail": "幸福路8号",
        },
    }
    answers: dict[str, requests.Response] = {}

    def place() -> None:
        answers["checkout"] = requests.post(base + "/api/v1/orders", json=body, headers=headers, timeout=60)

    engine = shop["engine"]
    with engine.connect() as holder:  # another client holds the product's row
        holder.execute(text("SELECT id FROM products WHERE id = :id FOR UPDATE"), {"id": shop["product_id"]})
        buyer = threading.Thread(target=place)
        buyer.start()
        # The checkout reaches the product's row and waits for the lock inside PostgreSQL.
        deadline = time.monotonic() + 30
        with engine.connect() as watch:
            while not watch.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ):
                assert time.monotonic() < deadline, "the checkout never reached the locked row"
                assert buyer.is_alive(), answers["checkout"].text
                time.sleep(0.05)
        # The one worker still answers: this request reads the database while the checkout waits.
        other = requests.get(base + f"/api/v1/products/{shop['product_id']}", timeout=20)
        assert other.status_code == 200, other.text
        assert other.json()["name"] == "梅县金柚"
        assert buyer.is_alive() and "checkout" not in answers  # still waiting on the lock
        holder.rollback()  # let go of the row
    buyer.join(timeout=60)
    placed = answers["checkout"]
    assert placed.status_code == 201, placed.text
    assert placed.json()["payment"]["client_secret"]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
