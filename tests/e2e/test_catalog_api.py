"""The catalog API over HTTP: categories, listing CRUD with bearer tokens, scope (own listings,
agents with consent), idempotent create, validation as JSON {code, message, errors} that writes
nothing, photos by multipart upload, and the schemas in the OpenAPI document."""

from __future__ import annotations

from io import BytesIO

import pytest
from sqlalchemy import func, select

from domain import Product, ProductPhoto, ProductStatus
from services import catalog, media
from tests.factories import World, build_world, consent, jpeg, listing, row


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


@pytest.fixture(autouse=True)
def media_root(app, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(app.extensions, "media_storage", media.LocalStorage(tmp_path / "media"))
    return tmp_path / "media"


def body(w: World, **extra) -> dict:  # type: ignore[no-untyped-def]
    data = {"name": "丰顺金柚", "category_id": w.pomelo.id, "unit": "jin", "price_fen": 1250, "stock": 300}
    data.update(extra)
    return data


def products(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(Product)) or 0


def assert_error(resp, status: int, code: str, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["code"] == code and isinstance(data["message"], str) and data["message"]
    if field is not None:
        assert field in data["errors"], data
        messages = data["errors"][field]
        assert isinstance(messages, list | dict) and messages, data
        if isinstance(messages, list):
            assert all(isinstance(m, str) and m for m in messages)
    return data


class TestCategories:
    def test_the_tree_parents_first(self, client, world):
        cats = client.get("/api/v1/categories").get_json()
        ids = [c["id"] for c in cats]
        assert ids.index(world.top.id) < ids.index(world.pomelo.id)
        pomelo = next(c for c in cats if c["id"] == world.pomelo.id)
        assert pomelo == {**pomelo, "parent_id": world.top.id, "name": "柚子", "flow": "farm"}


class TestCreate:
    def test_a_farmer_lists_with_a_token(self, client, session, world, bearer):
        resp = client.post(
            "/api/v1/products", json=body(world, description="甜"), headers=bearer(world.farmer)
        )
        assert resp.status_code == 201, resp.get_json()
        data = resp.get_json()
        assert data["seller_id"] == data["listed_by_id"] == world.farmer.id
        assert (data["price_fen"], data["stock"], data["status"], data["unit"]) == (
            1250,
            300,
            "active",
            "jin",
        )
        assert data["net_weight_g"] == 500 and data["origin_code"] == world.village.code
        assert data["photos"] == [] and data["certifications"] == []

    def test_no_token_no_listing(self, client, session, world):
        assert_error(client.post("/api/v1/products", json=body(world)), 401, "unauthorized")
        bad = {"Authorization": "Bearer gdm_not-a-token"}
        assert_error(client.post("/api/v1/products", json=body(world), headers=bad), 401, "unauthorized")
        assert products(session) == 0

    def test_a_browser_session_is_not_enough(self, client, session, world):
        from tests.conftest import login

        login(client, world.farmer.phone)
        assert_error(client.post("/api/v1/products", json=body(world)), 401, "unauthorized")

    def test_buyers_are_forbidden(self, client, session, world, bearer):
        assert_error(
            client.post("/api/v1/products", json=body(world), headers=bearer(world.buyer)), 403, "forbidden"
        )
        assert products(session) == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("price_fen", 0),
            ("price_fen", -1250),
            ("price_fen", 10_000_001),
            ("price_fen", 12.5),
            ("price_fen", "1250"),
            ("price_fen", None),
            ("stock", -1),
            ("stock", 1_000_001),
            ("stock", 10**40),
            ("name", "<script>alert(1)</script>"),
            ("name", ""),
            ("description", "<a href=x>y</a>"),
            ("category_id", 999_999),
            ("unit", "ton"),
            ("storage_class", "tropical"),
            ("harvest_start", "yesterday"),
            ("presale", "maybe"),
            ("certifications", [{"kind": "organic"}]),
            ("certifications", [{"kind": "halal", "number": "1"}]),
            ("certifications", "organic"),
        ],
    )
    def test_bad_fields_are_422_with_the_field_and_write_nothing(
        self, client, session, world, bearer, field, value
    ):
        headers = bearer(world.farmer)
        resp = client.post("/api/v1/products", json=body(world, **{field: value}), headers=headers)
        assert_error(resp, 422, "validation_error", field)
        assert products(session) == 0

    def test_missing_required_fields(self, client, session, world, bearer):
        resp = client.post("/api/v1/products", json={"name": "x"}, headers=bearer(world.farmer))
        data = assert_error(resp, 422, "validation_error")
        assert {"category_id", "unit", "price_fen", "stock"} <= set(data["errors"])

    def test_unknown_fields_are_refused(self, client, session, world, bearer):
        resp = client.post(
            "/api/v1/products", json=body(world, sales_count=999), headers=bearer(world.farmer)
        )
        assert_error(resp, 422, "validation_error", "sales_count")

    def test_harvest_window_and_pre_sale_rules(self, client, session, world, bearer):
        headers = bearer(world.farmer)
        resp = client.post(
            "/api/v1/products",
            json=body(world, harvest_start="2026-10-01", harvest_end="2026-09-01"),
            headers=headers,
        )
        assert_error(resp, 422, "validation_error", "harvest_end")
        assert_error(
            client.post("/api/v1/products", json=body(world, presale=True), headers=headers),
            422,
            "validation_error",
            "ships_from",
        )
        resp = client.post(
            "/api/v1/products",
            json=body(
                world,
                presale=True,
                stock=0,
                ships_from="2026-11-01",
                unit="box",
                net_weight_g=5000,
                certifications=[{"kind": "geographical_indication", "number": "AGI00321"}],
            ),
            headers=headers,
        )
        assert resp.status_code == 201
        data = resp.get_json()
        assert (data["presale"], data["ships_from"], data["status"]) == (True, "2026-11-01", "active")
        assert data["certifications"] == [{"kind": "geographical_indication", "number": "AGI00321"}]

    @pytest.mark.parametrize("via", ["header", "field"])
    def test_idempotent_create(self, client, session, world, bearer, via):
        headers = bearer(world.farmer)
        extra_headers, extra_body = (
            ({"Idempotency-Key": "app-42"}, {}) if via == "header" else ({}, {"idempotency_key": "app-42"})
        )
        first = client.post(
            "/api/v1/products", json=body(world, **extra_body), headers={**headers, **extra_headers}
        )
        again = client.post(
            "/api/v1/products",
            json=body(world, price_fen=1, **extra_body),
            headers={**headers, **extra_headers},
        )
        assert first.status_code == again.status_code == 201
        assert first.get_json()["id"] == again.get_json()["id"] and again.get_json()["price_fen"] == 1250
        assert products(session) == 1

    def test_an_agent_lists_for_a_consenting_farmer_only(self, client, session, world, bearer):
        headers = bearer(world.agent)
        resp = client.post("/api/v1/products", json=body(world, seller_id=world.farmer.id), headers=headers)
        assert_error(resp, 403, "forbidden")
        assert products(session) == 0
        consent(session, world.agent, world.farmer, world.point)
        resp = client.post("/api/v1/products", json=body(world, seller_id=world.farmer.id), headers=headers)
        assert resp.status_code == 201
        data = resp.get_json()
        assert data["seller_id"] == world.farmer.id and data["listed_by_id"] == world.agent.id
        assert data["consent_id"] is not None
        resp = client.post(
            "/api/v1/products", json=body(world, seller_id=world.far_farmer.id), headers=headers
        )
        assert_error(resp, 403, "forbidden")

    def test_a_draft(self, client, world, bearer):
        resp = client.post("/api/v1/products", json=body(world, publish=False), headers=bearer(world.farmer))
        assert resp.get_json()["status"] == "draft"


class TestRead:
    def test_published_listings_are_public(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        data = client.get(f"/api/v1/products/{product.id}").get_json()
        assert data["name"] == "梅县金柚" and data["seller"]["id"] == world.farmer.id
        assert data["category"]["name"] == "柚子" and data["origin_name"] == world.village.name

    def test_drafts_only_for_the_seller(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        assert_error(client.get(f"/api/v1/products/{product.id}"), 404, "not_found")
        assert_error(
            client.get(f"/api/v1/products/{product.id}", headers=bearer(world.neighbour_farmer)),
            404,
            "not_found",
        )
        resp = client.get(f"/api/v1/products/{product.id}", headers=bearer(world.farmer))
        assert resp.status_code == 200 and resp.get_json()["status"] == "draft"

    def test_unknown_is_404(self, client):
        assert_error(client.get("/api/v1/products/424242"), 404, "not_found")

    def test_my_products(self, client, session, world, bearer):
        mine = catalog.create_product(session, world.farmer, listing(world), publish=False)
        catalog.create_product(session, world.neighbour_farmer, listing(world))
        data = client.get("/api/v1/me/products", headers=bearer(world.farmer)).get_json()
        assert [p["id"] for p in data] == [mine.id]
        assert_error(client.get("/api/v1/me/products"), 401, "unauthorized")
        assert_error(
            client.get(f"/api/v1/me/products?seller_id={world.farmer.id}", headers=bearer(world.agent)),
            403,
            "forbidden",
        )
        consent(session, world.agent, world.farmer, world.point)
        data = client.get(
            f"/api/v1/me/products?seller_id={world.farmer.id}", headers=bearer(world.agent)
        ).get_json()
        assert [p["id"] for p in data] == [mine.id]


class TestChange:
    def test_patch_changes_only_what_is_sent(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        resp = client.patch(
            f"/api/v1/products/{product.id}",
            json={"description": "新摘", "stock": 5},
            headers=bearer(world.farmer),
        )
        assert resp.status_code == 200
        assert (resp.get_json()["description"], resp.get_json()["stock"], resp.get_json()["name"]) == (
            "新摘",
            5,
            "梅县金柚",
        )

    def test_another_farmer_gets_403_and_nothing_changes(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        headers = bearer(world.neighbour_farmer)
        for resp in (
            client.patch(f"/api/v1/products/{product.id}", json={"name": "偷改"}, headers=headers),
            client.patch(f"/api/v1/products/{product.id}", json={"name": "<b>x</b>"}, headers=headers),
            client.put(f"/api/v1/products/{product.id}/price-stock", json={"price_fen": 1}, headers=headers),
            client.post(f"/api/v1/products/{product.id}/status", json={"status": "paused"}, headers=headers),
        ):
            assert_error(resp, 403, "forbidden")
        assert row(session, product.id) == before

    def test_patch_validation(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        headers = bearer(world.farmer)
        assert_error(
            client.patch(f"/api/v1/products/{product.id}", json={"name": "<img src=x>"}, headers=headers),
            422,
            "validation_error",
            "name",
        )
        assert_error(
            client.patch(f"/api/v1/products/{product.id}", json={"seller_id": 1}, headers=headers),
            422,
            "validation_error",
            "seller_id",
        )
        assert row(session, product.id) == before

    def test_price_and_stock_then_sold_out_and_back(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        headers = bearer(world.farmer)
        url = f"/api/v1/products/{product.id}/price-stock"
        data = client.put(url, json={"price_fen": 990, "stock": 0}, headers=headers).get_json()
        assert (data["price_fen"], data["stock"], data["status"]) == (990, 0, "sold_out")
        data = client.put(url, json={"stock": 12}, headers=headers).get_json()
        assert (data["price_fen"], data["status"]) == (990, "active")
        assert_error(client.put(url, json={}, headers=headers), 422, "validation_error", "price_fen")
        assert_error(
            client.put(url, json={"price_fen": -5}, headers=headers), 422, "validation_error", "price_fen"
        )
        assert_error(client.put(url, json={"stock": 1.5}, headers=headers), 422, "validation_error", "stock")
        assert row(session, product.id)["stock"] == 12

    def test_status_moves(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        headers = bearer(world.farmer)
        url = f"/api/v1/products/{product.id}/status"
        assert_error(client.post(url, json={"status": "paused"}, headers=headers), 409, "conflict")
        assert client.post(url, json={"status": "active"}, headers=headers).get_json()["status"] == "active"
        assert client.post(url, json={"status": "paused"}, headers=headers).get_json()["status"] == "paused"
        assert_error(
            client.post(url, json={"status": "deleted"}, headers=headers), 422, "validation_error", "status"
        )
        assert row(session, product.id)["status"] == ProductStatus.PAUSED


class TestPhotos:
    def test_upload_and_delete(self, client, session, world, bearer, media_root):
        product = catalog.create_product(session, world.farmer, listing(world))
        headers = bearer(world.farmer)
        resp = client.post(
            f"/api/v1/products/{product.id}/photos",
            data={"photo": (BytesIO(jpeg((1000, 750))), "x.jpg")},
            content_type="multipart/form-data",
            headers=headers,
        )
        assert resp.status_code == 201, resp.get_json()
        photo = resp.get_json()
        assert [s["width"] for s in photo["sizes"]] == [240, 480, 960]
        assert photo["sizes"][0]["webp"].startswith("http://localhost/media/p/")
        assert client.get(f"/api/v1/products/{product.id}").get_json()["photos"][0]["id"] == photo["id"]
        resp = client.delete(f"/api/v1/products/{product.id}/photos/{photo['id']}", headers=headers)
        assert resp.status_code == 204
        assert session.scalar(select(func.count()).select_from(ProductPhoto)) == 0
        assert not any(p.is_file() for p in media_root.rglob("*"))

    def test_not_a_photo_and_no_file(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        headers = bearer(world.farmer)
        url = f"/api/v1/products/{product.id}/photos"
        resp = client.post(
            url,
            data={"photo": (BytesIO(b"%PDF-1.4 not a photo"), "scan.jpg")},
            content_type="multipart/form-data",
            headers=headers,
        )
        assert_error(resp, 422, "validation_error", "photo")
        assert_error(
            client.post(url, data={}, content_type="multipart/form-data", headers=headers),
            422,
            "validation_error",
            "photo",
        )
        assert session.scalar(select(func.count()).select_from(ProductPhoto)) == 0

    def test_far_too_large_is_413(self, client, session, world, bearer, app, monkeypatch):
        monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 10_000)
        monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10_000)
        product = catalog.create_product(session, world.farmer, listing(world))
        resp = client.post(
            f"/api/v1/products/{product.id}/photos",
            data={"photo": (BytesIO(b"\xff\xd8" + b"\0" * 100_000), "x.jpg")},
            content_type="multipart/form-data",
            headers=bearer(world.farmer),
        )
        assert_error(resp, 413, "payload_too_large")

    def test_someone_elses_listing(self, client, session, world, bearer):
        product = catalog.create_product(session, world.farmer, listing(world))
        resp = client.post(
            f"/api/v1/products/{product.id}/photos",
            data={"photo": (BytesIO(jpeg((400, 300))), "x.jpg")},
            content_type="multipart/form-data",
            headers=bearer(world.neighbour_farmer),
        )
        assert_error(resp, 403, "forbidden")
        assert_error(client.delete(f"/api/v1/products/{product.id}/photos/1"), 401, "unauthorized")


class TestOpenApi:
    def test_the_catalog_is_documented_with_its_schemas(self, client):
        spec = client.get("/api/openapi.json").get_json()
        paths = spec["paths"]
        for path, method in [
            ("/api/v1/categories", "get"),
            ("/api/v1/products", "post"),
            ("/api/v1/products/{product_id}", "get"),
            ("/api/v1/products/{product_id}", "patch"),
            ("/api/v1/products/{product_id}/status", "post"),
            ("/api/v1/products/{product_id}/price-stock", "put"),
            ("/api/v1/me/products", "get"),
            ("/api/v1/products/{product_id}/photos", "post"),
            ("/api/v1/products/{product_id}/photos/{photo_id}", "delete"),
        ]:
            assert method in paths[path], path
        schemas = spec["components"]["schemas"]
        assert {
            "ProductCreate",
            "Product",
            "ProductPatch",
            "PriceStock",
            "Status",
            "Category",
            "Photo",
        } <= set(schemas)
        price = schemas["ProductCreate"]["properties"]["price_fen"]
        assert price["type"] == "integer" and price["minimum"] == 1
        post = paths["/api/v1/products"]["post"]
        assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
        assert post["security"] == [{"bearerAuth": []}]
        upload = paths["/api/v1/products/{product_id}/photos"]["post"]["requestBody"]["content"]
        assert "multipart/form-data" in upload
