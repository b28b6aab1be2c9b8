"""The sell pages over HTTP: my listings with one-tap price and stock, pause and resume; the seller
profile; a new listing in three steps with a photo upload; editing with the history; agents
enrolling farmers and listing for them; the photo files served with year-long caching.

Assertions look at status codes, form values and the database, not at English words (the pages
speak Chinese by default)."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from domain import (
    ListingConsent,
    Product,
    ProductPhoto,
    ProductStatus,
    SellerProfile,
    SmsMessage,
    Unit,
    User,
)
from services import catalog, media
from tests.conftest import count, latest_sms_code, login
from tests.factories import World, build_world, consent, jpeg, listing, row


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


@pytest.fixture()
def media_root(app, tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "media"
    monkeypatch.setitem(app.extensions, "media_storage", media.LocalStorage(root))
    return root


def html(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def english(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/lang", data={"lang": "en", "next": "/"})


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'value="([^"]*)"', tag.group())
    return value.group(1) if value else ""


def step1(w: World, **extra: str) -> dict[str, str]:
    data = {
        "step": "1",
        "category_id": str(w.pomelo.id),
        "name": "丰顺金柚",
        "unit": "jin",
        "description": "",
    }
    data.update(extra)
    return data


def step2(w: World, key: str, **extra: str) -> dict[str, str]:
    data = {**step1(w), "step": "2", "key": key, "price": "12.50", "stock": "200", "storage_class": "ambient"}
    data.update(extra)
    return data


def form_key(page: str) -> str:
    key = input_value(page, "key")
    assert key and re.fullmatch(r"[0-9a-f]{32}", key)
    return key


class TestMyListings:
    def test_a_farmer_without_a_profile_is_sent_to_fill_it_in(self, client, make_user):
        from domain import Role

        farmer = make_user(Role.FARMER)
        login(client, farmer.phone)
        for url in ("/sell/", "/sell/new"):
            resp = client.get(url)
            assert resp.status_code == 302 and "/sell/profile" in resp.headers["Location"]

    def test_the_listings_with_price_stock_status_and_a_one_tap_form(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world, price_fen=1250, stock=80))
        login(client, world.farmer.phone)
        page = html(client.get("/sell/"))
        assert "丰顺金柚" not in page and "梅县金柚" in page
        assert "¥12.50" in page
        assert f'action="/sell/{product.id}/price-stock"' in page
        assert re.search(rf'id="price-{product.id}"[^>]*value="12.50"', page)
        assert re.search(rf'id="stock-{product.id}"[^>]*value="80"', page)
        assert f"/sell/{product.id}/edit" in page

    def test_one_tap_sets_price_in_yuan_exactly_and_stock(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        resp = client.post(f"/sell/{product.id}/price-stock", data={"price": "0.29", "stock": "75"})
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/sell/#p{product.id}")
        assert (row(session, product.id)["price_fen"], row(session, product.id)["stock"]) == (29, 75)

    @pytest.mark.parametrize(
        ("price", "stock", "bad"),
        [
            ("abc", "10", "price"),
            ("-3", "10", "price"),
            ("0", "10", "price"),
            ("999999", "10", "price"),
            ("5", "-1", "stock"),
            ("5", "2.5", "stock"),
            ("5", "99999999", "stock"),
        ],
    )
    def test_bad_values_keep_what_was_typed_and_change_nothing(
        self, client, session, world, price, stock, bad
    ):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        login(client, world.farmer.phone)
        resp = client.post(f"/sell/{product.id}/price-stock", data={"price": price, "stock": stock})
        page = html(resp)
        assert resp.status_code == 422
        assert re.search(rf'id="price-{product.id}"[^>]*value="{re.escape(price)}"', page)
        assert re.search(rf'id="stock-{product.id}"[^>]*value="{re.escape(stock)}"', page)
        assert re.search(
            rf'id="{bad}-{product.id}"[^>]*class="invalid"|class="invalid"[^>]*id="{bad}-{product.id}"', page
        )
        assert 'class="field-error"' in page
        assert row(session, product.id) == before

    def test_pause_and_resume(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        resp = client.post(f"/sell/{product.id}/status", data={"status": "paused"})
        assert resp.status_code == 302
        assert row(session, product.id)["status"] == ProductStatus.PAUSED
        assert 'name="status" value="active"' in html(client.get("/sell/"))  # the resume button
        client.post(f"/sell/{product.id}/status", data={"status": "active"})
        assert row(session, product.id)["status"] == ProductStatus.ACTIVE

    def test_a_refused_move_is_a_message_not_an_error_page(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world, stock=0), publish=False)
        login(client, world.farmer.phone)
        resp = client.post(f"/sell/{product.id}/status", data={"status": "active"}, follow_redirects=True)
        assert resp.status_code == 200 and "flash-error" in html(resp)
        assert row(session, product.id)["status"] == ProductStatus.DRAFT

    def test_the_one_tap_form_answers_an_admin_the_same_whatever_the_values(self, client, session, world):
        """Admins moderate on the edit page; the listings' one-tap form is the seller's and their
        agent's, and a bad value must not change the answer (it used to: 403 only when invalid)."""
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        login(client, world.admin.phone)
        for data in ({"price": "1", "stock": "1"}, {"price": "", "stock": "x"}):
            assert client.post(f"/sell/{product.id}/price-stock", data=data).status_code == 403
        assert row(session, product.id) == before
        assert client.get(f"/sell/{product.id}/edit").status_code == 200

    def test_another_farmers_listing_is_forbidden_and_unchanged(self, client, session, world, media_root):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        login(client, world.neighbour_farmer.phone)
        assert (
            client.post(f"/sell/{product.id}/price-stock", data={"price": "1", "stock": "1"}).status_code
            == 403
        )
        assert client.post(f"/sell/{product.id}/status", data={"status": "paused"}).status_code == 403
        assert client.get(f"/sell/{product.id}/edit").status_code == 403
        assert client.post(f"/sell/{product.id}/edit", data=step2(world, "0" * 32)).status_code == 403
        assert client.get(f"/sell/{product.id}/photos").status_code == 403
        upload = {"photo": (BytesIO(jpeg((300, 300))), "p.jpg")}
        resp = client.post(f"/sell/{product.id}/photos", data=upload, content_type="multipart/form-data")
        assert resp.status_code == 403
        assert row(session, product.id) == before
        assert not media_root.exists() or not any(media_root.rglob("*.jpg"))

    def test_an_unknown_listing_is_not_found(self, client, world):
        login(client, world.farmer.phone)
        assert client.get("/sell/999999/edit").status_code == 404
        assert client.post("/sell/999999/price-stock", data={"price": "1", "stock": "1"}).status_code == 404

    def test_buyers_may_not_sell_and_strangers_log_in_first(self, client, world):
        assert client.get("/sell/").status_code == 302  # to the login page
        login(client, world.buyer.phone)
        assert client.get("/sell/").status_code == 403
        assert client.get("/sell/new").status_code == 403
        assert client.get("/sell/profile").status_code == 403

    def test_the_workspace_links_sellers_to_their_listings(self, client, world):
        login(client, world.farmer.phone)
        assert 'href="/sell/"' in html(client.get("/workspace"))


class TestSellerProfilePage:
    def test_the_village_picker_walks_down_without_saving(self, client, session, make_user, world):
        from domain import Role

        farmer = make_user(Role.FARMER)
        login(client, farmer.phone)
        code = world.village.code
        resp = client.post(
            "/sell/profile",
            data={"action": "pick", "shop_name": "新农户", "city": code[:4], "county": code[:6]},
        )
        page = html(resp)
        assert resp.status_code == 200
        assert 'name="town"' in page and 'name="village"' not in page
        assert input_value(page, "shop_name") == "新农户"
        assert session.get(SellerProfile, farmer.id) is None
        resp = client.post(
            "/sell/profile",
            data={
                "action": "save",
                "kind": "farmer",
                "shop_name": "新农户",
                "city": code[:4],
                "county": code[:6],
                "town": code[:9],
                "village": code,
                "next": "/sell/new",
            },
        )
        assert resp.status_code == 302 and resp.headers["Location"] == "/sell/new"
        assert session.get(SellerProfile, farmer.id).division_code == code

    def test_without_a_village_or_with_html_nothing_is_saved_and_input_kept(self, client, session, make_user):
        from domain import Role

        farmer = make_user(Role.FARMER)
        login(client, farmer.phone)
        resp = client.post(
            "/sell/profile",
            data={"action": "save", "shop_name": "<b>柚园</b>", "city": "4414", "county": "441423"},
        )
        page = html(resp)
        assert resp.status_code == 422
        assert input_value(page, "shop_name") == "&lt;b&gt;柚园&lt;/b&gt;"
        assert page.count('class="field-error"') >= 2  # the name and the village
        assert session.get(SellerProfile, farmer.id) is None

    def test_the_farmer_sees_and_ends_an_agents_consent(self, client, session, world):
        record = consent(session, world.agent, world.farmer, world.point)
        login(client, world.farmer.phone)
        page = html(client.get("/sell/profile"))
        assert f"/sell/consents/{record.id}/revoke" in page
        resp = client.post(f"/sell/consents/{record.id}/revoke", data={"next": "/sell/profile"})
        assert resp.status_code == 302
        session.expire_all()
        assert session.get(ListingConsent, record.id).revoked_at is not None


class TestListingInThreeSteps:
    def test_step_one_then_two_then_photos_then_publish(self, client, session, world, media_root):
        login(client, world.farmer.phone)
        page = html(client.get("/sell/new"))
        key = form_key(page)
        assert 'name="price"' not in page  # step 1 asks what, not the price
        resp = client.post(
            "/sell/new", data=step1(world, key=key, unit="box", net_weight="10", weight_unit="jin")
        )
        page = html(resp)
        assert resp.status_code == 200
        assert 'name="price"' in page and input_value(page, "name") == "丰顺金柚"  # carried along hidden
        assert input_value(page, "key") == key and input_value(page, "net_weight") == "10"
        resp = client.post(
            "/sell/new",
            data=step2(
                world,
                key,
                unit="box",
                net_weight="10",
                weight_unit="jin",
                price="88",
                cert_green_food="LB-45-1",
                harvest_start="2026-10-01",
                harvest_end="2026-12-31",
            ),
        )
        assert resp.status_code == 302
        product = session.scalars(select(Product).where(Product.seller_id == world.farmer.id)).one()
        assert resp.headers["Location"].endswith(f"/sell/{product.id}/photos?new=1")
        assert product.status == ProductStatus.DRAFT and product.idempotency_key == key
        assert (product.unit, product.net_weight_g, product.price_fen, product.stock) == (
            Unit.BOX,
            5000,
            8800,
            200,
        )
        assert [(c.kind.value, c.number) for c in product.certifications] == [("green_food", "LB-45-1")]

        page = html(client.get(f"/sell/{product.id}/photos?new=1"))
        file_input = re.search(
            r'<input type="file" name="photo" accept="image/\*" capture="environment">', page
        )
        assert file_input and 'enctype="multipart/form-data"' in page
        resp = client.post(
            f"/sell/{product.id}/photos?new=1",
            data={"photo": (BytesIO(jpeg((1600, 1200))), "IMG_0001.JPG")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 302 and resp.headers["Location"].endswith(
            f"/sell/{product.id}/photos?new=1"
        )
        photo = session.scalars(select(ProductPhoto).where(ProductPhoto.product_id == product.id)).one()
        assert (media_root / photo.key / "960.webp").is_file()
        page = html(client.get(f"/sell/{product.id}/photos?new=1"))
        assert f"/media/{photo.key}/480.jpg" in page and 'type="image/webp"' in page

        resp = client.post(f"/sell/{product.id}/status", data={"status": "active", "next": "/sell/"})
        assert resp.status_code == 302 and resp.headers["Location"] == "/sell/"
        assert row(session, product.id)["status"] == ProductStatus.ACTIVE

    def test_a_resent_step_two_never_makes_a_second_product(self, client, session, world):
        login(client, world.farmer.phone)
        key = form_key(html(client.get("/sell/new")))
        first = client.post("/sell/new", data=step2(world, key))
        again = client.post("/sell/new", data=step2(world, key, price="13"))
        assert first.headers["Location"] == again.headers["Location"]
        (product,) = session.scalars(select(Product).where(Product.seller_id == world.farmer.id)).all()
        assert product.price_fen == 1300  # still a draft: the resent form's values count

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            ({"name": ""}, "name"),
            ({"name": "<script>alert(1)</script>"}, "name"),
            ({"description": '<img src=x onerror="x()">'}, "description"),
            ({"category_id": ""}, "category_id"),
            ({"category_id": "abc"}, "category_id"),
            ({"unit": "box", "net_weight": ""}, "net_weight"),
            ({"unit": "bag", "net_weight": "-2"}, "net_weight"),
        ],
    )
    def test_step_one_errors_keep_the_input_and_write_nothing(self, client, session, world, fields, bad):
        login(client, world.farmer.phone)
        resp = client.post("/sell/new", data=step1(world, key="a" * 32, **fields))
        page = html(resp)
        assert resp.status_code == 422
        assert 'name="price"' not in page  # still step 1
        assert re.search(rf'name="{bad}"[^>]*class="invalid"|class="invalid"[^>]*name="{bad}"', page) or (
            bad == "category_id" and '<select id="category_id" name="category_id" class="invalid">' in page
        )
        for name, value in fields.items():
            if name in ("name", "net_weight"):
                assert input_value(page, name) == value.replace("<", "&lt;").replace(">", "&gt;").replace(
                    '"', "&#34;"
                )
        assert count(session, Product, Product.seller_id == world.farmer.id) == 0

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            ({"price": "abc"}, "price"),
            ({"price": "-1"}, "price"),
            ({"price": "0"}, "price"),
            ({"price": "12.345"}, "price"),
            ({"price": "100000000"}, "price"),
            ({"stock": "-5"}, "stock"),
            ({"stock": "lots"}, "stock"),
            ({"harvest_start": "2026-10-01", "harvest_end": "2026-09-01"}, "harvest_end"),
            ({"harvest_start": "not-a-date"}, "harvest_start"),
            ({"presale": "y"}, "ships_from"),
            ({"cert_organic": "<b>1</b>"}, "certifications"),
        ],
    )
    def test_step_two_errors_keep_the_input_and_write_nothing(self, client, session, world, fields, bad):
        login(client, world.farmer.phone)
        resp = client.post("/sell/new", data=step2(world, "b" * 32, **fields))
        page = html(resp)
        assert resp.status_code == 422
        assert 'name="price"' in page and input_value(page, "step") == "2"
        if bad != "certifications":
            assert re.search(rf'name="{bad}"[^>]*class="invalid"|class="invalid"[^>]*name="{bad}"', page), (
                page
            )
        if "price" in fields:
            assert input_value(page, "price") == fields["price"]
        assert 'class="field-error"' in page
        assert count(session, Product, Product.seller_id == world.farmer.id) == 0

    def test_back_to_step_one_keeps_everything(self, client, world):
        login(client, world.farmer.phone)
        resp = client.post("/sell/new", data={**step2(world, "c" * 32, price="9.90"), "back": "1"})
        page = html(resp)
        assert resp.status_code == 200 and input_value(page, "step") == "1"
        assert input_value(page, "name") == "丰顺金柚" and input_value(page, "price") == "9.90"

    def test_a_text_file_named_like_a_photo_is_refused_and_nothing_is_stored(
        self, client, session, world, media_root
    ):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        login(client, world.farmer.phone)
        english(client)
        resp = client.post(
            f"/sell/{product.id}/photos",
            data={"photo": (BytesIO(b"this is text, not a photo\n" * 50), "photo.jpg", "image/jpeg")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 422
        assert "This file is not a photo." in html(resp)
        assert count(session, ProductPhoto) == 0
        assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))

    def test_an_oversized_photo_gets_a_clear_message(
        self, client, session, world, media_root, app, monkeypatch
    ):
        monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 50_000)
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        english(client)
        big = jpeg((2000, 2000)) + b"\0" * 60_000
        resp = client.post(
            f"/sell/{product.id}/photos",
            data={"photo": (BytesIO(big), "big.jpg")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 422 and "The photo is too large" in html(resp)
        assert count(session, ProductPhoto) == 0

    def test_the_upload_still_needs_its_csrf_token(
        self, client, session, world, media_root, app, monkeypatch
    ):
        # The photo route reads its CSRF token itself (after raising the request limit for a photo).
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        resp = client.post(
            f"/sell/{product.id}/photos",
            data={"photo": (BytesIO(jpeg((300, 300))), "p.jpg")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 400
        assert count(session, ProductPhoto) == 0

    def test_no_file_chosen_asks_for_a_photo(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        resp = client.post(
            f"/sell/{product.id}/photos",
            data={"photo": (BytesIO(b""), "")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 422

    def test_remove_and_make_main(self, client, session, world, media_root):
        product = catalog.create_product(session, world.farmer, listing(world))
        store = media.LocalStorage(media_root)
        a = media.add_photo(session, store, world.farmer, product.id, jpeg((300, 300)))
        b = media.add_photo(session, store, world.farmer, product.id, jpeg((300, 300)))
        login(client, world.farmer.phone)
        assert client.post(f"/sell/{product.id}/photos/{b.id}/main").status_code == 302
        session.expire_all()
        assert [p.id for p in session.get(Product, product.id).photos] == [b.id, a.id]
        assert client.post(f"/sell/{product.id}/photos/{a.id}/remove").status_code == 302
        assert not (media_root / a.key).exists()
        assert count(session, ProductPhoto, ProductPhoto.product_id == product.id) == 1


class TestEditPage:
    def test_all_fields_and_the_history_with_masked_phones(self, client, session, world):
        consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_price_and_stock(session, world.agent, product.id, price_fen=990)
        login(client, world.farmer.phone)
        page = html(client.get(f"/sell/{product.id}/edit"))
        assert input_value(page, "name") == "梅县金柚" and input_value(page, "price") == "9.90"
        masked = world.agent.phone[:3] + "****" + world.agent.phone[-4:]
        assert masked in page and world.agent.phone not in page
        assert "¥6.80" in page and "¥9.90" in page  # before → after

    def test_saving_changes_and_keeping_input_on_error(self, client, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        login(client, world.farmer.phone)
        data = {k: v for k, v in step2(world, "").items() if k not in ("step", "key")}
        resp = client.post(
            f"/sell/{product.id}/edit", data={**data, "name": "丰顺金柚（大果）", "stock": "7"}
        )
        assert resp.status_code == 302
        assert (row(session, product.id)["name"], row(session, product.id)["stock"]) == (
            "丰顺金柚（大果）",
            7,
        )
        before = row(session, product.id)
        resp = client.post(f"/sell/{product.id}/edit", data={**data, "name": "<i>x</i>", "price": "-2"})
        page = html(resp)
        assert resp.status_code == 422 and input_value(page, "price") == "-2"
        assert row(session, product.id) == before

    def test_the_origin_stays_what_it_was(self, client, session, world):
        product = catalog.create_product(
            session, world.farmer, listing(world, origin_code=world.neighbour.code)
        )
        login(client, world.farmer.phone)
        data = {k: v for k, v in step2(world, "").items() if k not in ("step", "key")}
        client.post(f"/sell/{product.id}/edit", data=data)
        assert row(session, product.id)["origin_code"] == world.neighbour.code


class TestAgentPages:
    PHONE = "13712349999"

    def test_an_agent_enrolls_a_farmer_and_lists_for_them(self, client, session, world):
        login(client, world.agent.phone)
        resp = client.get("/sell/")
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/sell/farmers")
        page = html(client.get("/sell/farmers"))
        assert 'name="send_code"' in page and 'name="code"' not in page
        resp = client.post("/sell/farmers", data={"step": "1", "phone": self.PHONE, "send_code": "1"})
        page = html(resp)
        assert resp.status_code == 200 and input_value(page, "step") == "2"
        assert f'<option value="{world.neighbour.code}"' in page
        assert f'<option value="{world.far_village.code}"' not in page  # another town
        resp = client.post(
            "/sell/farmers",
            data={
                "step": "2",
                "phone": self.PHONE,
                "code": latest_sms_code(session, self.PHONE),
                "display_name": "钟阿婆",
                "village_code": world.neighbour.code,
                "submit": "1",
            },
        )
        assert resp.status_code == 302
        farmer = session.scalars(select(User).where(User.phone == self.PHONE)).one()
        assert f"/sell/new?farmer={farmer.id}" in html(client.get("/sell/farmers"))

        page = html(client.get(f"/sell/new?farmer={farmer.id}"))
        key = form_key(page)
        resp = client.post(f"/sell/new?farmer={farmer.id}", data=step2(world, key))
        assert resp.status_code == 302
        product = session.scalars(select(Product).where(Product.seller_id == farmer.id)).one()
        assert product.listed_by_id == world.agent.id and product.consent_id is not None
        assert product.origin_code == world.neighbour.code
        page = html(client.get(f"/sell/?farmer={farmer.id}"))
        assert "丰顺金柚" in page and f"farmer={farmer.id}" in page

    def test_a_wrong_code_keeps_the_input_and_enrolls_nobody(self, client, session, world):
        login(client, world.agent.phone)
        client.post("/sell/farmers", data={"step": "1", "phone": self.PHONE, "send_code": "1"})
        code = latest_sms_code(session, self.PHONE)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post(
            "/sell/farmers",
            data={
                "step": "2",
                "phone": self.PHONE,
                "code": wrong,
                "display_name": "钟阿婆",
                "village_code": world.village.code,
                "submit": "1",
            },
        )
        page = html(resp)
        assert resp.status_code == 422
        assert input_value(page, "display_name") == "钟阿婆" and input_value(page, "code") == wrong
        assert count(session, User, User.phone == self.PHONE) == 0

    def test_listing_for_a_farmer_without_consent_is_forbidden(self, client, session, world):
        login(client, world.agent.phone)
        for url in (f"/sell/?farmer={world.farmer.id}", f"/sell/new?farmer={world.farmer.id}"):
            assert client.get(url).status_code == 403
        assert (
            client.post(f"/sell/new?farmer={world.farmer.id}", data=step2(world, "d" * 32)).status_code == 403
        )
        assert count(session, Product, Product.seller_id == world.farmer.id) == 0

    def test_farmers_and_buyers_have_no_agent_page(self, client, session, world):
        login(client, world.farmer.phone)
        assert client.get("/sell/farmers").status_code == 403
        resp = client.post("/sell/farmers", data={"step": "1", "phone": self.PHONE, "send_code": "1"})
        assert resp.status_code == 403
        assert count(session, SmsMessage, SmsMessage.phone == self.PHONE) == 0

    def test_the_agent_switches_between_farmers_on_my_listings(self, client, session, world):
        consent(session, world.agent, world.farmer, world.point)
        consent(session, world.agent, world.neighbour_farmer, world.point)
        catalog.create_product(session, world.farmer, listing(world, name="老李的柚"))
        login(client, world.agent.phone)
        page = html(client.get(f"/sell/?farmer={world.neighbour_farmer.id}"))
        assert f'href="/sell/?farmer={world.farmer.id}"' in page
        assert "老李的柚" not in page
        assert "老李的柚" in html(client.get(f"/sell/?farmer={world.farmer.id}"))


class TestPhotoFiles:
    def test_served_with_type_and_a_year_of_immutable_caching(self, client, session, world, media_root):
        product = catalog.create_product(session, world.farmer, listing(world))
        photo = media.add_photo(
            session, media.LocalStorage(media_root), world.farmer, product.id, jpeg((600, 400))
        )
        for ext, mime in (("webp", "image/webp"), ("jpg", "image/jpeg")):
            with client.get(f"/media/{photo.key}/480.{ext}") as resp:  # a file: close it
                assert resp.status_code == 200
                assert resp.headers["Content-Type"] == mime
                assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert Image.open(BytesIO(resp.data)).size == (480, 320)

    @pytest.mark.parametrize(
        "path",
        [
            "/media/p/00/00000000000000000000000000000000/480.jpg",
            "/media/../instance/secret_key",
            "/media/%2e%2e/instance/secret_key",
            "/media/p/ab/..%2f..%2fsecret_key",
            "/media/secret_key",
            "/media/p/ab/0123456789abcdef0123456789abcdef/480.png",
        ],
    )
    def test_unknown_keys_and_paths_outside_are_not_found(self, client, media_root, path):
        media_root.mkdir(parents=True, exist_ok=True)
        (media_root / "secret_key").write_text("s3cr3t")
        resp = client.get(path)
        assert resp.status_code == 404
        assert b"s3cr3t" not in resp.data
