"""Issue 13, item 5: no stale price anywhere. With the shop's page cache ON, a price change, a
product selling out at checkout (and coming back on sale), and a campaign boundary passing show
on the very next request, in every process: two apps on one database stand for two gunicorn
workers, each with its own caches.

Each test first shows the cache really serves: a change written behind the services' back (a
raw UPDATE, no bump) is NOT seen, so a fresh page after a real change is the key's doing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from domain import Product
from marketplace.config import TestingConfig
from marketplace.web.shop.cache import VersionReader, shop_cache
from services import catalog
from services.catalog import freshness
from services.orders import reservations
from services.orders.pricing import CheckoutSettings
from tests.conftest import NOW, backend

SETTINGS = CheckoutSettings(free_shipping_from_fen=0)
PAGE = "/c/citrus"


@pytest.fixture()
def apps(app, build_app, database_url) -> Iterator[list]:  # type: ignore[no-untyped-def,type-arg]
    """Two apps on the test's database (two worker processes), the page cache on in both."""
    config = TestingConfig()
    config.DATABASE_URL = database_url
    config.SHOP_PAGE_CACHE_SECONDS = 30.0
    saved = app.config["SHOP_PAGE_CACHE_SECONDS"]
    app.config["SHOP_PAGE_CACHE_SECONDS"] = 30.0
    both = [app, build_app(config)]
    for a in both:
        with a.app_context():
            shop_cache().clear()
    yield both
    app.config["SHOP_PAGE_CACHE_SECONDS"] = saved
    with app.app_context():
        shop_cache().clear()


def card(html: str, product_id: int) -> str:
    match = re.search(rf'<li class="pcard[^"]*" data-id="{product_id}">.*?</li>', html, re.S)
    assert match, f"product {product_id} is not on the page"
    return match.group(0)


def pages(apps, path: str = PAGE) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for a in apps:
        resp = a.test_client().get(path)
        assert resp.status_code == 200
        out.append(resp.get_data(as_text=True))
    return out


def behind_the_back(session, product: Product, **values) -> None:  # type: ignore[no-untyped-def]
    """A change the cache cannot know of (no bump): only a served cache keeps showing the old."""
    session.execute(
        update(Product)
        .where(Product.id == product.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def test_a_price_change_shows_on_the_next_request_in_every_process(apps, market):  # type: ignore[no-untyped-def]
    session, product = market.session, market.product("梅县金柚")
    assert all("¥45.00" in card(html, product.id) for html in pages(apps))
    behind_the_back(session, product, price_fen=4400)
    assert all("¥45.00" in card(html, product.id) for html in pages(apps)), "the cache is not serving"

    catalog.set_price_and_stock(session, market.shop.meixian_farmer, product.id, price_fen=3900)

    for html in pages(apps):
        assert "¥39.00" in card(html, product.id) and "¥45.00" not in html
    # the page as anonymous visitors get it whole, and the fragment a signed-in buyer gets
    for a in apps:
        client = a.test_client()
        client.post("/auth/login", data={"phone": market.buyer.phone, "password": "nongye-2026"})
        assert "¥39.00" in card(client.get(PAGE).get_data(as_text=True), product.id)


def test_selling_out_at_checkout_and_back_on_sale_show_at_once(apps, market):  # type: ignore[no-untyped-def]
    session, product = market.session, market.product("梅县蜜柚")
    assert all("soldout" not in card(html, product.id) for html in pages(apps))
    version = freshness.version(session)

    order = market.place({"梅县蜜柚": product.stock}, SETTINGS)  # the last units: take_stock flips it

    assert freshness.version(session) == version + 1
    for html in pages(apps):
        assert 'class="pcard soldout"' in card(html, product.id)

    reservations.release_order_stock(session, order)  # the payment never came: back on sale
    session.commit()
    assert freshness.version(session) == version + 2
    for html in pages(apps):
        assert "soldout" not in card(html, product.id)


def test_a_checkout_that_does_not_sell_out_leaves_the_version(apps, market):  # type: ignore[no-untyped-def]
    session = market.session
    version = freshness.version(session)
    order = market.place({"梅县蜜柚": 1}, SETTINGS)
    reservations.release_order_stock(session, order)
    session.commit()
    assert freshness.version(session) == version


def test_a_campaign_boundary_passing_changes_the_page_at_that_instant(apps, market, clock):  # type: ignore[no-untyped-def]
    session, product = market.session, market.product("梅县金柚")
    starts = NOW + timedelta(hours=6)

    def campaign(_session, _now):  # type: ignore[no-untyped-def]
        return [starts, starts + timedelta(days=2)]

    freshness.register_boundaries(campaign)
    try:
        assert all("¥45.00" in card(html, product.id) for html in pages(apps))
        # Stands for a campaign price that applies from `starts`: written earlier, seen from then.
        behind_the_back(session, product, price_fen=3600)
        clock.set(starts - timedelta(seconds=1))
        assert all("¥45.00" in card(html, product.id) for html in pages(apps))
        clock.set(starts)
        assert all("¥36.00" in card(html, product.id) for html in pages(apps))
    finally:
        freshness.unregister_boundaries(campaign)


@pytest.mark.skipif(backend() != "postgresql", reason="the version reader is PostgreSQL's")
def test_the_version_reader_reads_what_is_committed_in_one_round_trip(engine):  # type: ignore[no-untyped-def]
    """Served pages read the version through their own autocommit connection (the tests above
    go through the lent session): it sees a committed bump at once and survives a dropped
    connection."""
    reader = VersionReader(engine)
    with Session(engine) as session:
        before = freshness.version(session)
        assert reader.read() == before
        freshness.bump(session, "test")
        session.commit()  # for real: this worker's database keeps version + 1, which no test minds
    assert reader.read() == before + 1
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": reader._local.conn.info.backend_pid})
    assert reader.read() == before + 1  # a new connection, read again
    reader.close()
