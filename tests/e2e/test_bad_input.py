"""No input gives a 500 (issue 9, finding 7): ids beyond the id columns (2**31 and up, 2**64,
10**30), "digits" that isdigit() accepts and int() does not (², ①), negative, zero, exponent and
empty ids, wherever an id is read (paths, query strings, forms, JSON bodies), quantities written
the same ways, a lone surrogate in a JSON string and deeply nested JSON.

Each case expects a 4xx with a readable message in Chinese (the default language): 404 for an id
in the path or a page's filter, 422 (400 for a body that is not JSON we can store) for bodies and
forms; and nothing written."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from werkzeug.routing import IntegerConverter

from domain import CartItem, Order, Product, Role
from services.validation import MAX_ID
from tests.conftest import count, login
from tests.factories import Market

HAN = re.compile(r"[\u4e00-\u9fff]")
# As a URL, a form or a query string carries them: text.
BAD_IDS = [str(2**64), "1" + "0" * 30, str(MAX_ID + 1), "²", "①", "-1", "0", "1e3", ""]
# As JSON carries them: numbers, and strings where a number belongs.
BAD_JSON_IDS: list[Any] = [2**64, 10**30, MAX_ID + 1, -1, 0, 1e3, 1.5, "²", "①", "1e3", "", "1", True]
BAD_QUANTITIES = ["²", "①", "１²", str(2**64), "1" + "0" * 30, "1e3", "1.5", "", "-1", "0", "1000"]
BAD_JSON_QUANTITIES: list[Any] = [2**64, 10**30, 0, -1, 1000, 1.5, 1e3, "²", "①", "1", None, True]


def _path(value: str) -> str:
    return quote(value, safe="")


def _failures(results: list[tuple[Any, Any, int, str]], expected: tuple[int, ...]) -> list[str]:
    return [
        f"{what} {value!r}: {status} {body[:300]}"
        for what, value, status, body in results
        if status not in expected
    ]


def _chinese_json(resp) -> bool:  # type: ignore[no-untyped-def]
    data = resp.get_json(silent=True) or {}
    return isinstance(data.get("message"), str) and bool(HAN.search(data["message"]))


# --- ids in the path: 404 -------------------------------------------------------------------------


WEB_PATHS = [
    ("GET", "/p/{}"),
    ("GET", "/s/{}"),
    ("GET", "/points/{}"),
    ("POST", "/cart/add/{}"),
    ("POST", "/cart/items/{}"),
    ("POST", "/cart/items/{}/remove"),
    ("GET", "/campaigns/{}"),
]
ADMIN_WEB_PATHS = [
    ("GET", "/finance/batches/{}"),
    ("GET", "/finance/batches/{}.csv"),
    ("GET", "/manage/nodes/{}"),
    ("POST", "/sell/{}/price-stock"),
    ("POST", "/sell/{}/status"),
    ("GET", "/sell/{}/edit"),
    ("POST", "/auth/users/grants/{}/revoke"),
    ("GET", "/admin/campaigns/{}"),
    ("GET", "/admin/campaigns/{}/edit"),
    ("POST", "/admin/campaigns/{}/edit"),
    ("POST", "/admin/campaigns/{}/publish"),
    ("GET", "/admin/campaigns/{}/report.csv"),
    ("POST", "/admin/campaigns/signups/{}/decide"),
]
API_PATHS = [
    ("GET", "/api/v1/products/{}"),
    ("PATCH", "/api/v1/products/{}"),
    ("PUT", "/api/v1/products/{}/price-stock"),
    ("DELETE", "/api/v1/products/1/photos/{}"),
    ("GET", "/api/v1/sellers/{}"),
    ("GET", "/api/v1/village-points/{}"),
    ("PATCH", "/api/v1/nodes/{}"),
    ("POST", "/api/v1/users/{}/roles"),
    ("DELETE", "/api/v1/users/1/roles/{}"),
]


def test_an_id_in_a_page_path_that_is_no_id_is_a_404(client, market: Market, admin):  # type: ignore[no-untyped-def]
    results = []
    for method, pattern in WEB_PATHS:
        for value in BAD_IDS:
            resp = client.open(pattern.format(_path(value)), method=method, data={"quantity": "1"})
            results.append((f"{method} {pattern}", value, resp.status_code, resp.get_data(as_text=True)))
    login(client, admin.phone)
    for method, pattern in ADMIN_WEB_PATHS:
        for value in BAD_IDS:
            resp = client.open(pattern.format(_path(value)), method=method, data={})
            results.append((f"{method} {pattern}", value, resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (404,)) == []
    assert "页面不存在" in client.get(f"/p/{2**64}").get_data(as_text=True)
    assert count(market.session, CartItem) == 0


def test_an_id_in_an_api_path_that_is_no_id_is_a_json_404(client, market: Market, admin, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(admin)
    results = []
    for method, pattern in API_PATHS:
        for value in BAD_IDS:
            resp = client.open(pattern.format(_path(value)), method=method, json={}, headers=headers)
            body = resp.get_data(as_text=True)
            ok = resp.status_code == 404 and resp.is_json and _chinese_json(resp)
            results.append((f"{method} {pattern}", value, 404 if ok else resp.status_code or 0, body))
    assert _failures(results, (404,)) == []


# --- ids in query strings -------------------------------------------------------------------------


def test_an_api_id_filter_that_is_no_id_is_a_422(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(market.shop.meixian_farmer)
    results = []
    for path in (
        "/api/v1/products?seller={}",
        "/api/v1/me/products?seller_id={}",
        "/api/v1/sub-orders?seller_id={}",
    ):
        for value in BAD_IDS:
            resp = client.get(path.format(_path(value)), headers=headers)
            ok = resp.status_code == 422 and _chinese_json(resp)
            results.append((path, value, 422 if ok else resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []


def test_a_page_filter_by_farmer_that_is_no_id_is_a_404(client, market: Market):  # type: ignore[no-untyped-def]
    login(client, market.shop.meixian_farmer.phone)
    results = []
    for path in ("/sell/?farmer={}", "/orders/sell?farmer={}"):
        for value in BAD_IDS:
            if value == "":
                continue  # an empty filter is no filter
            resp = client.get(path.format(_path(value)))
            results.append((path, value, resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (404,)) == []
    assert client.get("/sell/?farmer=").status_code == 200


# --- ids and quantities in JSON bodies: 422 -----------------------------------------------------------


def test_a_cart_line_with_a_bad_product_id_or_quantity_is_a_422(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(market.buyer)
    good_id = market.product("梅县金柚").id
    results = []
    for value in BAD_JSON_IDS:
        resp = client.put(
            "/api/v1/cart", json={"items": [{"product_id": value, "quantity": 1}]}, headers=headers
        )
        ok = (
            resp.status_code == 422
            and _chinese_json(resp)
            and "items" in (resp.get_json().get("errors") or {})
        )
        results.append(("product_id", value, 422 if ok else resp.status_code, resp.get_data(as_text=True)))
    for value in BAD_JSON_QUANTITIES:
        resp = client.put(
            "/api/v1/cart", json={"items": [{"product_id": good_id, "quantity": value}]}, headers=headers
        )
        ok = resp.status_code == 422 and _chinese_json(resp)
        results.append(("quantity", value, 422 if ok else resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []
    assert count(market.session, CartItem) == 0


def test_an_order_with_a_bad_id_anywhere_is_a_422_and_writes_nothing(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(market.buyer)
    item = {"product_id": market.product("梅县金柚").id, "quantity": 1}
    results = []
    for n, value in enumerate(BAD_JSON_IDS):
        for field, extra in (
            ("address_id", {"delivery": "home"}),
            (
                "pickup_node_id",
                {"delivery": "pickup", "pickup_contact": {"recipient": "陈", "phone": "13912345678"}},
            ),
            ("items", {}),
        ):
            body: dict[str, Any] = {"items": [item], "idempotency_key": f"bad-input-{field}-{n:04d}", **extra}
            if field == "items":
                body["items"] = [{"product_id": value, "quantity": 1}]
                body["address_id"] = 1
            else:
                body[field] = value
            resp = client.post("/api/v1/orders", json=body, headers=headers)
            ok = resp.status_code == 422 and _chinese_json(resp)
            results.append((field, value, 422 if ok else resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []
    assert count(market.session, Order) == 0


def test_a_listing_with_an_id_beyond_the_columns_is_a_422(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(market.shop.meixian_farmer)
    body = {
        "name": "新柚子",
        "category_id": market.shop.categories["citrus"],
        "unit": "jin",
        "price_fen": 100,
        "stock": 1,
    }
    results = []
    for field in ("category_id", "seller_id"):
        for value in BAD_JSON_IDS:
            resp = client.post("/api/v1/products", json={**body, field: value}, headers=headers)
            ok = resp.status_code == 422 and _chinese_json(resp)
            results.append((field, value, 422 if ok else resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []


# --- quantities and ids in page forms -------------------------------------------------------------


def test_a_quantity_typed_with_unicode_digits_is_a_422_on_the_product_page(client, market: Market):  # type: ignore[no-untyped-def]
    product = market.product("梅县金柚")
    results = []
    for value in BAD_QUANTITIES:
        resp = client.post(f"/cart/add/{product.id}", data={"quantity": value})
        results.append(("add", value, resp.status_code, resp.get_data(as_text=True)))
    client.post(f"/cart/add/{product.id}", data={"quantity": "2"})
    for value in BAD_QUANTITIES:
        resp = client.post(f"/cart/items/{product.id}", data={"quantity": value})
        results.append(("update", value, resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []
    assert "请输入整数" in client.post(f"/cart/add/{product.id}", data={"quantity": "²"}).get_data(
        as_text=True
    )
    with client.session_transaction() as sess:
        assert sess["cart"] == {str(product.id): 2}


def test_a_checkout_with_a_bad_id_or_quantity_is_a_422_and_places_nothing(client, market: Market):  # type: ignore[no-untyped-def]
    product = market.product("梅县金柚")
    login(client, market.buyer.phone)
    client.post(f"/cart/add/{product.id}", data={"quantity": "1"})
    base = {"key": "", "delivery": "home", "payment_method": "card", "action": "place"}
    results = []
    for n, value in enumerate(BAD_IDS):
        for field, data in (
            ("items", {"items": f"{value}:1", "address_id": "1"}),
            (
                "quantity",
                {"items": f"{product.id}:{BAD_QUANTITIES[n % len(BAD_QUANTITIES)]}", "address_id": "1"},
            ),
            ("address_id", {"items": f"{product.id}:1", "address_id": value or "x"}),
            (
                "pickup_node_id",
                {
                    "items": f"{product.id}:1",
                    "delivery": "pickup",
                    "pickup_node_id": value or "x",
                    "pickup_recipient": "陈",
                    "pickup_phone": "13912345678",
                },
            ),
        ):
            resp = client.post(
                "/cart/checkout", data={**base, "key": f"{n:02d}{field}".ljust(32, "0"), **data}
            )
            results.append((field, value, resp.status_code, resp.get_data(as_text=True)))
    assert _failures(results, (422,)) == []
    assert count(market.session, Order) == 0


# --- JSON that cannot be stored or parsed: 400 ----------------------------------------------------


def test_a_lone_surrogate_in_a_json_string_is_a_400_and_writes_nothing(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    product = market.product("梅县金柚")
    headers = {**bearer(market.shop.meixian_farmer), "Content-Type": "application/json"}
    for raw in (
        '{"name": "\\ud800"}',
        '{"name": "柚\\udfff子"}',
        '{"\\ud83d": 1}',
        '{"description": "a\\u0000b"}',
    ):
        resp = client.patch(f"/api/v1/products/{product.id}", data=raw, headers=headers)
        assert resp.status_code == 400, (raw, resp.status_code, resp.get_data(as_text=True)[:300])
        assert resp.is_json and _chinese_json(resp)
    market.session.expire_all()
    assert market.session.scalars(select(Product.name).where(Product.id == product.id)).one() == "梅县金柚"
    # A pair of surrogates is one character, and fine.
    resp = client.patch(
        f"/api/v1/products/{product.id}", data='{"name": "\\ud83c\\udf4a柚子"}', headers=headers
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["name"] == "🍊柚子"


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_a_400(client, market: Market, bearer, depth):  # type: ignore[no-untyped-def]
    headers = {**bearer(market.buyer), "Content-Type": "application/json"}
    for raw in (
        "[" * depth + "]" * depth,
        '{"items": ' + "[" * depth + "]" * depth + "}",
        '{"a":' * depth + "1" + "}" * depth,
    ):
        resp = client.put("/api/v1/cart", data=raw, headers=headers)
        assert resp.status_code == 400, (raw[:20], resp.status_code, resp.get_data(as_text=True)[:300])
        assert resp.is_json and _chinese_json(resp)
    assert count(market.session, CartItem) == 0


def test_json_that_is_not_json_is_a_400_in_the_users_language(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = {**bearer(market.buyer), "Content-Type": "application/json"}
    for raw in (b"{", b"\xff\xfe", b'{"items": [}', json.dumps({"items": []})[:-1].encode()):
        resp = client.put("/api/v1/cart", data=raw, headers=headers)
        assert resp.status_code == 400, (raw, resp.status_code)
        assert resp.is_json and _chinese_json(resp)


def test_an_english_client_reads_the_message_in_english(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    headers = {**bearer(market.buyer), "Accept-Language": "en"}
    resp = client.put("/api/v1/cart", json={"items": [{"product_id": 2**64, "quantity": 1}]}, headers=headers)
    assert resp.status_code == 422
    assert not HAN.search(json.dumps(resp.get_json(), ensure_ascii=False))


def test_admin_grant_with_a_node_id_beyond_the_column_is_a_422(client, market: Market, admin, bearer):  # type: ignore[no-untyped-def]
    headers = bearer(admin)
    user = market.buyer
    for value in BAD_JSON_IDS:
        resp = client.post(
            f"/api/v1/users/{user.id}/roles",
            json={"role": Role.AGENT.value, "node_id": value},
            headers=headers,
        )
        assert resp.status_code == 422, (value, resp.status_code, resp.get_data(as_text=True)[:300])


def test_a_payout_holding_period_that_is_no_number_is_a_422(client, admin):  # type: ignore[no-untyped-def]
    login(client, admin.phone)
    for value in ("²", "①", str(2**64), "1e3", "-1", ""):
        resp = client.post("/finance/", data={"holding_days": value})
        assert resp.status_code == 422, (value, resp.status_code)


def test_every_int_rule_takes_only_ids(app):  # type: ignore[no-untyped-def]
    from marketplace.errors import IdConverter

    converters = [c for rule in app.url_map.iter_rules() for c in rule._converters.values()]
    ints = [c for c in converters if isinstance(c, IntegerConverter)]
    assert ints and all(isinstance(c, IdConverter) for c in ints)


def test_a_list_error_next_to_its_items_errors_is_a_422_not_a_500(client, market: Market, bearer):  # type: ignore[no-untyped-def]
    """Found by the fuzz tier: {0: [...], "_schema": [...]} could not be written as JSON."""
    headers = bearer(market.buyer)
    resp = client.put("/api/v1/cart", json={"items": [{"product_id": 1}, {"product_id": 1}]}, headers=headers)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    errors = resp.get_json()["errors"]["items"]
    assert set(errors) == {"0", "1", "_schema"}


def test_a_locked_sqlite_database_is_a_503_to_try_again_not_a_500(app, client, monkeypatch):
    """If SQLite's busy timeout runs out, nothing was written and the client may try again."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    def locked():  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setitem(app.view_functions, "main.home", locked)
    resp = client.get("/")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"
    assert "系统繁忙，请稍后再试。" in resp.get_data(as_text=True)
