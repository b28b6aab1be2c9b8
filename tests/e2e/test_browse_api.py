"""The browse API over HTTP: /api/v1/products with filters, sort and keyset pages, and
/api/v1/sellers/<id>; bad parameters are 422 JSON {code, message, errors}, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import MEIXIAN, YINGDE
from tests.factories import Shop, build_shop


@pytest.fixture()
def shop(session, make_user, first_village) -> Shop:  # type: ignore[no-untyped-def]
    return build_shop(session, make_user, first_village)


def ok(client, url: str) -> dict:  # type: ignore[no-untyped-def]
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    return resp.get_json()


def names(body: dict) -> set[str]:
    return {item["name"] for item in body["items"]}


class TestProducts:
    def test_lists_what_buyers_may_see_with_card_fields(self, client, shop):
        body = ok(client, "/api/v1/products?limit=50")
        assert {i["id"] for i in body["items"]} == shop.visible_ids()
        assert body["next_cursor"] is None
        jinyou = next(i for i in body["items"] if i["name"] == "梅县金柚")
        assert jinyou["price_fen"] == 4500 and jinyou["unit"] == "jin" and jinyou["status"] == "active"
        assert jinyou["county_code"] == MEIXIAN and jinyou["county_name"] == "梅县区"
        assert jinyou["shop_name"] == "梅县柚园" and jinyou["geographical_indication"] is True
        assert next(i for i in body["items"] if i["name"] == "售罄的荔枝干")["status"] == "sold_out"

    def test_filters(self, client, shop):
        assert names(ok(client, "/api/v1/products?category=tea")) == {"英德红茶", "英德绿茶"}
        assert names(ok(client, f"/api/v1/products?county={YINGDE}&certification=organic")) == {"英德红茶"}
        assert names(ok(client, "/api/v1/products?storage=chilled")) == {"冰鲜走地鸡"}
        assert names(ok(client, "/api/v1/products?price_min=400&price_max=450")) == {"梅县蜜柚", "平价沙田柚"}
        assert names(ok(client, f"/api/v1/products?seller={shop.merchant.id}")) == {"复合肥"}

    def test_keyset_pages_by_price(self, client, shop):
        seen, prices, url = [], [], "/api/v1/products?sort=price_desc&limit=3"
        while True:
            body = ok(client, url)
            seen += [i["id"] for i in body["items"]]
            prices += [i["price_fen"] for i in body["items"]]
            if body["next_cursor"] is None:
                break
            url = f"/api/v1/products?sort=price_desc&limit=3&after={body['next_cursor']}"
        assert len(seen) == len(set(seen)) == len(shop.visible_ids())
        assert prices == sorted(prices, reverse=True)

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("sort=cheapest", "sort"),
            ("sort=relevance", "sort"),
            ("limit=0", "limit"),
            ("limit=51", "limit"),
            ("limit=ten", "limit"),
            ("price_min=-1", "price_min"),
            ("price_max=1.5", "price_max"),
            ("price_min=900&price_max=100", "price_max"),
            ("certification=iso", "certification"),
            ("storage=warm", "storage"),
            ("county=44", "county"),
            ("category=no-such-category", "category"),
            ("category=%E8%8D%94", "category"),
            ("seller=0", "seller"),
            ("after=garbage", "after"),
            ("after=W10", "after"),
        ],
    )
    def test_bad_parameters_are_422_json(self, client, shop, query, field):
        resp = client.get(f"/api/v1/products?{query}")
        assert resp.status_code == 422, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["code"] == "validation_error" and body["message"]
        assert field in body["errors"], body

    def test_a_cursor_from_another_order_is_422(self, client, shop):
        cursor = ok(client, "/api/v1/products?sort=price_asc&limit=1")["next_cursor"]
        assert client.get(f"/api/v1/products?sort=new&after={cursor}").status_code == 422


class TestSellers:
    def test_profile_path_and_first_page(self, client, shop):
        body = ok(client, f"/api/v1/sellers/{shop.yingde_farmer.id}")
        assert body["id"] == shop.yingde_farmer.id and body["shop_name"] == "英德茶园"
        assert body["kind"] == "cooperative"
        assert [p["level"] for p in body["path"]] == ["city", "county", "town", "village"]
        assert body["path"][1]["code"] == YINGDE
        assert {i["name"] for i in body["products"]["items"]} == {"英德红茶", "英德绿茶", "售罄的荔枝干"}

    def test_unknown_seller_is_404_json(self, client, shop, make_user):
        for seller_id in (999999, make_user().id):
            resp = client.get(f"/api/v1/sellers/{seller_id}")
            assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"


class TestOpenApi:
    def test_the_document_describes_the_browse_endpoints_and_schemas(self, client):
        doc = ok(client, "/api/openapi.json")
        products = doc["paths"]["/api/v1/products"]["get"]
        params = {p["name"] for p in products["parameters"]}
        assert {
            "category",
            "county",
            "certification",
            "storage",
            "price_min",
            "price_max",
            "sort",
            "after",
            "limit",
        } <= params
        assert "422" in products["responses"]
        assert "/api/v1/sellers/{seller_id}" in doc["paths"]
        schemas = doc["components"]["schemas"]
        assert {"ProductCard", "ProductPage", "SellerPage"} <= set(schemas)
