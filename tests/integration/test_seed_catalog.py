"""The demo catalog: loaded through the services (acting as each seller), complete, real (every
origin and seller village is an official division code), and idempotent."""

from __future__ import annotations

import csv
import time

import pytest
from sqlalchemy import func, select

from domain import (
    AuditEvent,
    Category,
    CategoryFlow,
    Certification,
    CertificationKind,
    Division,
    DivisionLevel,
    Product,
    ProductPhoto,
    ProductStatus,
    SellerKind,
    SellerProfile,
)
from seed.loader import DATA_DIR, SEED_KEY_PREFIX, load_all, read_json
from services import media
from tests.factories import database_state

FAMOUS = [
    "梅州金柚",
    "增城挂绿荔枝",
    "从化荔枝",
    "徐闻菠萝",
    "英德红茶",
    "新会陈皮",
    "清远鸡",
    "连州菜心",
    "化州橘红",
    "德庆贡柑",
    "廉江红橙",
    "紫金蝉茶",
    "凤凰单丛",
    "平远脐橙",
    "阳山鸡",
]


def division_codes() -> dict[str, str]:
    with (DATA_DIR / "divisions.csv").open(encoding="utf-8") as fh:
        return {row["code"]: row["level"] for row in csv.DictReader(fh)}


def catalog_state(session) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    state = database_state(session)

    def rows(model) -> list[tuple]:  # type: ignore[no-untyped-def]
        return sorted(session.execute(select(*model.__table__.columns)).all(), key=repr)

    for model in (Category, SellerProfile, Product, Certification, ProductPhoto):
        state[model.__tablename__] = rows(model)
    state["audit"] = rows(AuditEvent)
    return state


@pytest.fixture()
def storage(tmp_path) -> media.LocalStorage:  # type: ignore[no-untyped-def]
    return media.LocalStorage(tmp_path / "media")


class TestTheDemoCatalog:
    def test_loads_through_the_services_and_twice_adds_nothing(self, session, storage):
        started = time.perf_counter()
        first = load_all(session, storage=storage)
        elapsed = time.perf_counter() - started
        products = read_json("products.json")
        assert first["categories"] == len(read_json("categories.json"))
        assert first["seller_profiles"] == len(read_json("sellers.json"))
        assert first["products"] == first["photos"] == len(products) >= 40
        assert elapsed < 60, f"load_all took {elapsed:.1f}s"
        before = catalog_state(session)
        again = load_all(session, storage=storage)
        assert set(again.values()) == {0}
        assert catalog_state(session) == before
        files = [p for p in storage.root.rglob("*") if p.is_file()]
        assert len(files) == sum(len(media.variant_keys(p)) for p in session.scalars(select(ProductPhoto)))

    def test_without_a_storage_no_photos_are_made(self, session):
        report = load_all(session)
        assert report["photos"] == 0 and report["products"] >= 40
        assert session.scalar(select(func.count()).select_from(ProductPhoto)) == 0


class TestTheDataIsReal:
    def test_the_catalog_is_real_complete_and_plausible(self, session):
        # One load for every check (a load makes 30 users with hashed passwords: seconds).
        load_all(session)
        self.at_least_forty_farm_specialties_including_the_famous_ones(session)
        self.every_origin_and_seller_village_is_an_official_division(session)
        self.geographical_indications_carry_certificate_numbers(session)
        self.prices_units_storage_presales_and_sold_out(session)
        self.sellers_are_farmers_cooperatives_and_a_merchant_in_their_villages(session)
        self.the_products_were_made_by_their_sellers_under_stable_keys(session)

    def at_least_forty_farm_specialties_including_the_famous_ones(self, loaded):  # type: ignore[no-untyped-def]
        farm = loaded.scalars(select(Product).join(Category).where(Category.flow == CategoryFlow.FARM)).all()
        assert len(farm) >= 40
        listed = " ".join(p.name for p in farm)
        missing = [name for name in FAMOUS if name not in listed]
        assert not missing
        goods = loaded.scalars(
            select(Product).join(Category).where(Category.flow == CategoryFlow.GOODS)
        ).all()
        assert {p.category.parent.slug for p in goods} == {"farm-inputs", "daily-goods", "appliances"}

    def every_origin_and_seller_village_is_an_official_division(self, loaded):  # type: ignore[no-untyped-def]
        codes = division_codes()
        for product in loaded.scalars(select(Product)):
            assert product.origin_code in codes
            assert product.county_code == product.origin_code[:6]
            assert loaded.get(Division, product.county_code).level == DivisionLevel.COUNTY
            if product.category.flow == CategoryFlow.FARM:
                assert codes[product.origin_code] == "village", product.name
        for entry in read_json("sellers.json"):
            assert entry["division_code"] in codes
            if entry["kind"] != "merchant":
                assert codes[entry["division_code"]] == "village"

    def geographical_indications_carry_certificate_numbers(self, loaded):  # type: ignore[no-untyped-def]
        gi = loaded.scalars(
            select(Certification).where(Certification.kind == CertificationKind.GEOGRAPHICAL_INDICATION)
        ).all()
        assert len(gi) >= 20
        assert all(c.number.startswith("AGI") and c.number[3:].isdigit() for c in gi)

    def prices_units_storage_presales_and_sold_out(self, loaded):  # type: ignore[no-untyped-def]
        products = loaded.scalars(select(Product)).all()
        assert all(100 <= p.price_fen <= 100_000 for p in products)
        assert {p.storage_class.value for p in products} == {"ambient", "chilled", "frozen"}
        assert {p.unit.value for p in products} == {"jin", "kg", "box", "bag", "piece"}
        presales = [p for p in products if p.presale]
        assert len(presales) >= 2 and all(p.ships_from and p.status == ProductStatus.ACTIVE for p in presales)
        assert any(p.status == ProductStatus.SOLD_OUT for p in products)
        lychee = [p for p in products if "荔枝" in p.name and p.category.slug == "lychee-longan"]
        assert lychee and all(p.storage_class.value == "chilled" for p in lychee)

    def sellers_are_farmers_cooperatives_and_a_merchant_in_their_villages(self, loaded):  # type: ignore[no-untyped-def]
        profiles = loaded.scalars(select(SellerProfile)).all()
        kinds = {p.kind for p in profiles}
        assert kinds == {SellerKind.FARMER, SellerKind.COOPERATIVE, SellerKind.MERCHANT}
        with_point = [p for p in profiles if p.home_point is not None]
        assert len(with_point) >= 5  # farmers in villages that have a service point hand in there
        assert all(p.home_point.division_code == p.division_code for p in with_point)

    def the_products_were_made_by_their_sellers_under_stable_keys(self, loaded):  # type: ignore[no-untyped-def]
        for product in loaded.scalars(select(Product)):
            assert product.listed_by_id == product.seller_id
            assert product.idempotency_key.startswith(SEED_KEY_PREFIX)
