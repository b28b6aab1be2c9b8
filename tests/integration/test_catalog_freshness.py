"""services/catalog/freshness.py: the catalog's version moves once per committed change a list
shows, never for a rolled-back one; boundary lists are read again only when they may have
changed. The pages' side is tests/e2e/test_shop_freshness.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain import ProductStatus
from services import catalog
from services.catalog import freshness, listings
from tests.conftest import NOW


@pytest.fixture()
def shop(session, make_user, first_village):  # type: ignore[no-untyped-def]
    from tests.factories import build_shop

    return build_shop(session, make_user, first_village)


def test_a_bump_moves_the_version_once_when_its_transaction_commits(session):  # type: ignore[no-untyped-def]
    before = freshness.version(session)
    freshness.bump(session, "price")
    freshness.bump(session, "sold out")
    assert freshness.version(session) == before  # not before the commit
    session.commit()
    assert freshness.version(session) == before + 1
    session.commit()  # nothing noted since
    assert freshness.version(session) == before + 1


def test_a_rolled_back_bump_is_forgotten(session):  # type: ignore[no-untyped-def]
    before = freshness.version(session)
    freshness.bump(session, "price")
    session.rollback()
    session.commit()
    assert freshness.version(session) == before


def test_listing_changes_bump_and_draft_or_stock_only_changes_do_not(session, shop):  # type: ignore[no-untyped-def]
    farmer = shop.meixian_farmer
    product = shop.products["梅县蜜柚"]
    draft = shop.products["草稿里的柚子"]
    v = freshness.version(session)
    catalog.set_price_and_stock(session, farmer, product.id, stock=7)  # the figure shows nowhere
    catalog.set_price_and_stock(session, farmer, draft.id, price_fen=990)  # not listed
    assert freshness.version(session) == v
    catalog.set_price_and_stock(session, farmer, product.id, price_fen=520)
    assert freshness.version(session) == v + 1
    catalog.set_price_and_stock(session, farmer, product.id, stock=0)  # sold out
    assert product.status == ProductStatus.SOLD_OUT and freshness.version(session) == v + 2
    catalog.set_status(session, farmer, product.id, ProductStatus.PAUSED)
    assert freshness.version(session) == v + 3
    catalog.update_product(session, farmer, product.id, listings.listing_input_of(product))  # no change
    assert freshness.version(session) == v + 3
    shop.add("新上架的柚子", "citrus", 880)
    assert freshness.version(session) == v + 4


def test_the_key_holds_the_last_boundary_passed(session):  # type: ignore[no-untyped-def]
    starts, ends = NOW + timedelta(minutes=2), NOW + timedelta(minutes=5)  # within BOUNDARY_REFRESH
    calls: list[datetime] = []

    def campaign(_session, now):  # type: ignore[no-untyped-def]
        calls.append(now)
        return [ends, starts, starts]

    tracker = freshness.Tracker()
    freshness.register_boundaries(campaign)
    try:
        v = freshness.version(session)
        assert tracker.key(session, NOW) == (v, None)
        assert tracker.key(session, starts - timedelta(microseconds=1)) == (v, None)
        assert tracker.key(session, starts) == (v, starts)
        assert tracker.key(session, ends + timedelta(minutes=1)) == (v, ends)
        assert len(calls) == 1  # one read of the boundaries for this version
        freshness.bump(session, "campaign edited")
        session.commit()
        assert tracker.key(session, starts) == (v + 1, starts)
        assert len(calls) == 2
        # read again after BOUNDARY_REFRESH, and when time goes back (a replay, a test)
        tracker.key(session, starts + freshness.BOUNDARY_REFRESH)
        tracker.key(session, NOW)
        assert len(calls) == 4
    finally:
        freshness.unregister_boundaries(campaign)
    assert tracker.key(session, ends) == (v + 1, None)  # unregistered: read again, none left


def test_a_boundary_without_a_time_zone_is_refused(session):  # type: ignore[no-untyped-def]
    def naive(_session, _now):  # type: ignore[no-untyped-def]
        return [datetime(2026, 12, 1, 10, 0)]

    freshness.register_boundaries(naive)
    try:
        with pytest.raises(ValueError, match="naive"):
            freshness.Tracker().key(session, NOW)
    finally:
        freshness.unregister_boundaries(naive)
