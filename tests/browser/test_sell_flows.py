"""The sell side on a 360×740 phone in headless Chromium against the seeded server: a farmer lists
a product in three steps with a photo from the file input (without JavaScript), changes its price
with one tap, pauses and resumes it; a village agent enrolls a farmer with the consent code the
farmer reads out and lists a product for them, the farmer staying the seller of record.
Screenshots go to test-artifacts/browser/sell-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.browser

DEMO_PASSWORD = "nongye-2026"
DEMO_FARMER = "13800000041"  # 钟家金柚园, 梅县区松口镇大黄村
DAHUANG_AGENT = "13800000021"  # 大黄村电商服务站
NEW_FARMER_PHONE = "13766660041"


def fits_the_phone(page) -> None:  # type: ignore[no-untyped-def]
    """No element sticks out to the right of a 360 px screen (checked with JS where it is on)."""
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
    except Exception:  # JavaScript is off in this context: judge by the screenshot instead
        return
    assert width <= 360, f"page is {width}px wide on a 360px phone"


def log_in(page, server: str, phone: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/auth/login")
    page.fill("input[name=phone]", phone)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form.stacked [type=submit]")


@pytest.fixture(scope="module")
def camera_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo as a phone camera would save it: a JPEG with EXIF (and a GPS position)."""
    img = Image.new("RGB", (1600, 1200), (236, 226, 170))
    draw = ImageDraw.Draw(img)
    draw.ellipse((450, 250, 1150, 950), fill=(226, 190, 60))
    draw.ellipse((600, 380, 760, 520), fill=(242, 220, 120))
    draw.polygon([(800, 250), (980, 150), (900, 300)], fill=(60, 130, 60))
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"
    exif.get_ifd(0x8825).update({1: "N", 2: (24.0, 30.0, 0.0), 3: "E", 4: (116.0, 25.0, 0.0)})
    path = tmp_path_factory.mktemp("camera") / "IMG_20261126_101500.jpg"
    img.save(path, "JPEG", quality=88, exif=exif.tobytes())
    return path


def fill_profile_if_asked(page, shot) -> None:  # type: ignore[no-untyped-def]
    """A farmer without a seller profile is sent to fill it in first: walk the village picker."""
    if "/sell/profile" not in page.url:
        return
    shot(page, "sell-farmer-profile-first")
    if not page.input_value("input[name=shop_name]"):
        page.fill("input[name=shop_name]", "钟家金柚园")
    for level in ("city", "county", "town", "village"):
        select = page.locator(f"select[name={level}]")
        if select.count() == 0:
            with page.expect_navigation():
                page.click("button[name=action][value=pick]")
            select = page.locator(f"select[name={level}]")
        if not select.input_value():
            option = select.locator(
                "option",
                has_text={"city": "梅州市", "county": "梅县区", "town": "松口镇", "village": "大黄"}[level],
            )
            select.select_option(option.first.get_attribute("value"))
            with page.expect_navigation():
                page.click("button[name=action][value=pick]")
    with page.expect_navigation():
        page.click("button[name=action][value=save]")


def step_one(page, name: str, unit: str = "jin") -> None:  # type: ignore[no-untyped-def]
    select = page.locator("select[name=category_id]")
    select.select_option(select.locator("option").nth(1).get_attribute("value"))
    page.fill("input[name=name]", name)
    page.click(f"label.choice:has(input[name=unit][value={unit}])")


class TestFarmerListsFromAPhone:
    def test_three_steps_with_a_photo_then_one_tap_price_pause_and_resume(
        self, browser, server, shot, camera_photo
    ):
        # A cheap phone with JavaScript off: every step is a plain form.
        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            java_script_enabled=False,
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        log_in(page, server, DEMO_FARMER)
        page.goto(server + "/workspace")
        with page.expect_navigation():
            page.click(".workspace-farmer a.button")  # "my listings"
        fill_profile_if_asked(page, shot)
        assert page.url.rstrip("/").endswith("/sell"), page.url
        shot(page, "sell-farmer-listings-before")

        with page.expect_navigation():
            page.click("a.button.wide[href^='/sell/new']")
        # Step 1: what (a box of pomelos weighs 10 jin)
        step_one(page, "大黄村沙田柚（礼盒）", unit="box")
        page.fill("input[name=net_weight]", "10")
        shot(page, "sell-farmer-step1")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]")
        # Step 2: price and stock
        assert page.locator("input[name=price]").count() == 1
        page.fill("input[name=price]", "88")
        page.fill("input[name=stock]", "40")
        page.click("label.choice:has(input[name=storage_class][value=ambient])")
        shot(page, "sell-farmer-step2")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]:not([name=back])")
        # Step 3: a photo straight from the camera input
        match = re.search(r"/sell/(\d+)/photos\?new=1$", page.url)
        assert match, page.url
        product_id = match.group(1)
        camera = page.locator("input[type=file][name=photo][capture=environment]")
        assert camera.get_attribute("accept") == "image/*"
        camera.set_input_files(str(camera_photo))
        with page.expect_navigation():
            page.click("section.upload button[type=submit]")
        assert page.locator(".photo-grid picture img").count() == 1
        src = page.get_attribute(".photo-grid picture img", "src")
        assert re.search(r"^/media/p/[0-9a-f]{2}/[0-9a-f]{32}/480\.jpg$", src), src
        webp = page.locator(".photo-grid picture source[type='image/webp']").get_attribute("srcset")
        assert "240.webp 240w" in webp and "960.webp 960w" in webp
        response = page.request.get(server + src)
        assert response.status == 200 and "immutable" in response.headers["cache-control"]
        assert b"TestPhone" not in response.body() and b"Exif" not in response.body()
        shot(page, "sell-farmer-step3-photo")
        with page.expect_navigation():
            page.click("section.finish button[type=submit]")  # publish

        # My listings: it is on sale at ¥88.00
        card = page.locator(f"li#p{product_id}")
        assert "大黄村沙田柚（礼盒）" in card.inner_text()
        assert "¥88.00" in card.inner_text()
        assert card.locator("picture img").count() == 1
        shot(page, "sell-farmer-listed")

        # One tap: a new price
        card.locator("input[name=price]").fill("79.90")
        with page.expect_navigation():
            card.locator("form.quick button").click()
        card = page.locator(f"li#p{product_id}")
        assert "¥79.90" in card.inner_text()
        assert card.locator("input[name=price]").input_value() == "79.90"
        shot(page, "sell-farmer-price-changed")

        # Pause, then resume
        with page.expect_navigation():
            card.locator(".actions form button").click()
        card = page.locator(f"li#p{product_id}")
        assert card.locator(".tag.status-paused").count() == 1
        shot(page, "sell-farmer-paused")
        with page.expect_navigation():
            card.locator(".actions form button").click()
        assert page.locator(f"li#p{product_id} .tag.status-active").count() == 1

        # The public API shows it on sale, with the farmer as the seller.
        data = page.request.get(server + f"/api/v1/products/{product_id}").json()
        assert (data["status"], data["price_fen"], data["unit"], data["net_weight_g"]) == (
            "active",
            7990,
            "box",
            5000,
        )
        assert data["seller_id"] == data["listed_by_id"]
        context.close()

    def test_a_bad_price_is_shown_on_the_field_and_keeps_the_input(self, phone_page, server, shot):
        page = phone_page
        log_in(page, server, DEMO_FARMER)
        page.goto(server + "/sell/new")
        fill_profile_if_asked(page, shot)
        if "/sell/new" not in page.url:
            page.goto(server + "/sell/new")
        step_one(page, "测试：价格写错")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]")
        page.fill("input[name=price]", "十二块")
        page.fill("input[name=stock]", "-3")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]:not([name=back])")
        assert page.locator(".field-error").count() >= 2
        assert page.input_value("input[name=price]") == "十二块"
        assert page.input_value("input[name=stock]") == "-3"
        fits_the_phone(page)
        shot(page, "sell-farmer-bad-price")


class TestNewFarmerFillsInTheProfileFirst:
    def test_registered_farmer_is_sent_to_the_profile_and_picks_the_village(
        self, phone_page, browser, server, shot
    ):
        page = phone_page
        phone = "13766660042"
        page.goto(server + "/auth/register")
        page.fill("input[name=phone]", phone)
        with page.expect_navigation():
            page.click("[name=send_code]")
        outbox = browser.new_page()
        outbox.goto(server + "/dev/sms")
        code = re.search(phone + r".*?(\d{6})", outbox.inner_text("table"), re.S).group(1)
        outbox.close()
        page.fill("input[name=code]", code)
        page.fill("input[name=password]", "zhong-2026-ok")
        page.fill("input[name=password2]", "zhong-2026-ok")
        page.fill("input[name=display_name]", "钟伯")
        page.check("input[name=role_farmer]")
        with page.expect_navigation():
            page.click("[name=submit]")
        page.goto(server + "/sell/")
        assert "/sell/profile" in page.url
        fill_profile_if_asked(page, shot)
        assert page.url.rstrip("/").endswith("/sell"), page.url
        shot(page, "sell-new-farmer-listings")
        page.goto(server + "/sell/profile")
        assert page.input_value("select[name=village]")  # saved: the picker opens on the village
        fits_the_phone(page)
        shot(page, "sell-new-farmer-profile")


class TestAgentListsForAFarmer:
    def test_enroll_with_the_consent_code_then_list_for_the_farmer(
        self, phone_page, browser, server, shot, camera_photo
    ):
        page = phone_page
        log_in(page, server, DAHUANG_AGENT)
        page.goto(server + "/workspace")
        with page.expect_navigation():
            page.click(".workspace-agent a.button[href='/sell/farmers']")
        assert page.url.endswith("/sell/farmers")
        shot(page, "sell-agent-farmers")

        page.fill("input[name=phone]", NEW_FARMER_PHONE)
        with page.expect_navigation():
            page.click("[name=send_code]")
        # The farmer's phone gets the text; here the outbox page stands in for it.
        outbox = browser.new_page()
        outbox.goto(server + "/dev/sms")
        body = outbox.inner_text("table")
        outbox.close()
        match = re.search(NEW_FARMER_PHONE + r".*?(\d{6})", body, re.S)
        assert match, body
        page.fill("input[name=code]", match.group(1))
        page.fill("input[name=display_name]", "钟阿婆")
        village = page.locator("select[name=village_code]")
        option = village.locator("option", has_text="大黄")
        village.select_option(option.first.get_attribute("value"))
        shot(page, "sell-agent-enroll-step2")
        with page.expect_navigation():
            page.click("[name=submit]")
        farmer_card = page.locator("ul.farmers li", has_text="钟阿婆")
        assert farmer_card.count() == 1
        fits_the_phone(page)
        shot(page, "sell-agent-enrolled")

        with page.expect_navigation():
            farmer_card.locator("a.button[href*='/sell/new?farmer=']").click()
        farmer_id = int(re.search(r"farmer=(\d+)", page.url).group(1))
        assert page.locator(".acting-for").count() == 1  # "listing for 钟阿婆: she stays the seller"
        step_one(page, "钟阿婆自种番薯")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]")
        page.fill("input[name=price]", "3.5")
        page.fill("input[name=stock]", "300")
        shot(page, "sell-agent-step2")
        with page.expect_navigation():
            page.click("form.listing-form button[type=submit]:not([name=back])")
        product_id = re.search(r"/sell/(\d+)/photos\?new=1$", page.url).group(1)
        page.set_input_files("input[type=file][capture=environment]", str(camera_photo))
        with page.expect_navigation():
            page.click("section.upload button[type=submit]")
        shot(page, "sell-agent-step3-photo")
        with page.expect_navigation():
            page.click("section.finish button[type=submit]")
        assert f"farmer={farmer_id}" in page.url
        assert "¥3.50" in page.locator(f"li#p{product_id}").inner_text()
        fits_the_phone(page)
        shot(page, "sell-agent-farmer-listings")

        # The farmer is the seller of record; the agent is who listed it, under the consent.
        data = page.request.get(server + f"/api/v1/products/{product_id}").json()
        assert data["seller_id"] == farmer_id
        assert data["listed_by_id"] != farmer_id and data["consent_id"] is not None
        assert data["status"] == "active" and len(data["photos"]) == 1

        # The change history names the agent.
        page.goto(server + f"/sell/{product_id}/edit")
        assert "张桂兰" in page.inner_text("section.history")
        shot(page, "sell-agent-edit-history")
