"""A city buyer on a 360×740 phone in headless Chromium against the seeded server and its own
localstripe: products of two farmers into the cart as a guest, log in at checkout, a new address
through the village picker, card payment typed into (localstripe's) Stripe.js card form, and the
paid order with its two parcels. Then, with JavaScript off, a pickup order paid with WeChat Pay:
the QR code is drawn by the server and the page reloads itself until the payment lands.
Screenshots go to test-artifacts/browser/checkout-*.png."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

DEMO_PASSWORD = "nongye-2026"
BUYER = "13800000061"  # 广州买家 赵晨
POMELO = "梅县红肉蜜柚"  # 钟家金柚园 (13800000041), 梅县区
TEA = "英德红茶 英红九号"  # 英德 (13800000044)


def fits_the_phone(page) -> None:  # type: ignore[no-untyped-def]
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
    except Exception:  # JavaScript is off in this context
        return
    assert width <= 360, f"page is {width}px wide on a 360px phone"


def fits_the_screenshot(path) -> None:  # type: ignore[no-untyped-def]
    """With JavaScript off: a full-page screenshot (2 device pixels per CSS pixel) is 720 px wide."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.width <= 720, f"{path.name} is {image.width / 2:g}px wide on a 360px phone"


def phone_context(browser, *, javascript: bool = True, **options):  # type: ignore[no-untyped-def]
    return browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        java_script_enabled=javascript,
        **options,
    )


def add_to_cart(page, server: str, name: str, quantity: int) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/search?q={name}")
    with page.expect_navigation():
        page.locator(".pcard a", has_text=name).first.click()
    assert page.locator("h1").inner_text().startswith(name.split()[0])
    page.fill("#cart-qty", str(quantity))
    with page.expect_navigation():
        page.click("form.add-cart button[type=submit]")
    assert "/p/" in page.url
    assert page.locator(".flash-success").count() == 1


def log_in(page) -> None:  # type: ignore[no-untyped-def]
    assert "/auth/login" in page.url, page.url
    page.fill("input[name=phone]", BUYER)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form.stacked [type=submit]")
    # A refused log-in shows the form again: say why, rather than fail later at checkout.
    assert "/auth/login" not in page.url, page.locator("main").inner_text()


def pick_village(page) -> None:  # type: ignore[no-untyped-def]
    """Walk the no-JavaScript village picker: city, county, town, village, one press each."""
    for level, wanted in (("city", "梅州市"), ("county", "梅县区"), ("town", None), ("village", None)):
        select = page.locator(f"select[name={level}]")
        if wanted:
            value = select.locator("option", has_text=wanted).first.get_attribute("value")
        else:
            value = select.locator("option").nth(1).get_attribute("value")
        select.select_option(value)
        with page.expect_navigation():
            page.click("fieldset.picker button[name=action][value=pick]")


def type_card(page, number: str) -> None:  # type: ignore[no-untyped-def]
    """Type a test card into (localstripe's) Stripe.js card form."""
    page.locator(".card-element input[placeholder=number]").fill(number)
    page.locator(".card-element input[placeholder=exp_month]").fill("12")
    page.locator(".card-element input[placeholder=exp_year]").fill("30")
    page.locator(".card-element input[placeholder=cvc]").fill("123")


def parcels(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The status of each parcel on the order summary."""
    items = page.locator(".order-summary li.parcel")
    return [items.nth(i).get_attribute("data-status") or "" for i in range(items.count())]


class TestBuyerChecksOutOnAPhone:
    def test_two_farmers_card_payment_paid_with_two_parcels(self, browser, server, shot):
        context = phone_context(browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

        add_to_cart(page, server, POMELO, 3)
        add_to_cart(page, server, TEA, 1)
        assert page.locator(".cart-count").inner_text() == "2"
        page.goto(server + "/cart/")
        assert page.locator(".cart-parcel").count() == 2
        fits_the_phone(page)
        shot(page, "checkout-1-cart")

        with page.expect_navigation():
            page.click("a.button.wide[href='/cart/checkout']")
        log_in(page)
        assert page.url.endswith("/cart/checkout"), page.url
        assert page.locator(".checkout-parcel").count() == 2
        # A new address (the buyer may have saved one in an earlier run: choose "new" then).
        new = page.locator("input[name=address_id][value=new]")
        if new.get_attribute("type") == "radio":
            page.click("label.choice:has(input[name=address_id][value=new])")
        page.fill("input[name=recipient]", "赵晨")
        page.fill("input[name=phone]", "13800000061")
        pick_village(page)
        page.fill("input[name=detail]", "村口小卖部旁 8 号")
        page.click("label.choice:has(input[name=payment_method][value=card])")
        fits_the_phone(page)
        shot(page, "checkout-2-form")
        with page.expect_navigation():
            page.click("button[name=action][value=place]")

        assert re.search(r"/cart/orders/\d+/pay$", page.url), page.url
        card = page.locator(".card-element input[placeholder=number]")
        card.wait_for(state="visible")
        type_card(page, "4242424242424242")
        fits_the_phone(page)
        shot(page, "checkout-3-card")
        page.click("#card-pay button[type=submit]")
        page.wait_for_url(re.compile(r"/cart/orders/\d+/return$"))
        page.wait_for_load_state()
        assert page.locator("[data-state=paid]").count() == 1, console
        assert parcels(page) == ["paid", "paid"]
        fits_the_phone(page)
        shot(page, "checkout-4-paid")

        # The pay page of a paid order says so too, and nothing asks for the card again.
        page.goto(page.url.replace("/return", "/pay"))
        assert page.locator("[data-state=paid]").count() == 1
        assert page.locator("#card-pay").count() == 0
        context.close()

    def test_a_card_the_bank_checks_3d_secure(self, browser, server, shot):
        context = phone_context(browser)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(server + "/auth/login")
        log_in(page)
        add_to_cart(page, server, POMELO, 1)
        page.goto(server + "/cart/checkout")
        # The address saved by an earlier checkout, or a new one.
        if page.locator("input[type=radio][name=address_id]").count() == 0:
            page.fill("input[name=recipient]", "赵晨")
            pick_village(page)
            page.fill("input[name=detail]", "村口小卖部旁 8 号")
        page.click("label.choice:has(input[name=payment_method][value=card])")
        with page.expect_navigation():
            page.click("button[name=action][value=place]")
        type_card(page, "4000002500003155")
        page.click("#card-pay button[type=submit]")
        # The server confirmed; the bank wants its check: Stripe.js (localstripe's) asks.
        page.locator("[data-state=authenticate]").wait_for()
        page.get_by_role("button", name="Complete authentication").click()
        page.wait_for_url(re.compile(r"/cart/orders/\d+/return$"))
        page.wait_for_load_state()
        assert page.locator("[data-state=paid]").count() == 1
        shot(page, "checkout-8-3ds-paid")
        context.close()

    def test_without_javascript_pickup_and_wechat_pay_until_paid(
        self, browser, server, shot, browser_localstripe
    ):
        context = phone_context(browser, javascript=False)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(server + "/auth/login")
        log_in(page)
        add_to_cart(page, server, POMELO, 2)
        page.goto(server + "/cart/checkout")
        # Seen once in five runs: no pickup choice to click. Say where the page was if it recurs.
        assert "/cart/checkout" in page.url, page.url
        assert page.locator("input[name=delivery][value=pickup]").count() == 1, page.content()[:2000]
        page.click("label.choice:has(input[name=delivery][value=pickup])")
        county = page.locator("select[name=pickup_county]")
        county.select_option(county.locator("option", has_text="梅县区").first.get_attribute("value"))
        with page.expect_navigation():
            page.click(".pickup-only button[name=action][value=pick]")
        page.locator(".points label.choice").first.click()
        page.click("label.choice:has(input[name=payment_method][value=wechat_pay])")
        fits_the_screenshot(shot(page, "checkout-5-pickup-form"))
        with page.expect_navigation():
            page.click("button[name=action][value=place]")

        match = re.search(r"/cart/orders/(\d+)/pay$", page.url)
        assert match, page.url
        assert page.locator("[data-state=wechat]").count() == 1
        assert page.locator(".pay-qr svg path").count() == 1
        fits_the_screenshot(shot(page, "checkout-6-wechat-qr"))

        # The buyer scans and pays in WeChat; the page reloads itself (meta refresh) and sees it.
        intent = re.search(
            r"/_test/payment_intents/(pi_\w+)/",
            page.locator(".pay-state a").first.get_attribute("href") or "",
        )
        assert intent, "the WeChat instructions link names the PaymentIntent"
        browser_localstripe.wallet_paid(intent.group(1))
        page.locator("[data-state=paid]").wait_for(timeout=20_000)
        assert parcels(page) == ["paid"]
        fits_the_screenshot(shot(page, "checkout-7-wechat-paid"))
        context.close()


class TestAPaymentThatFailsIsPaidAnotherWay:
    def test_declined_wechat_then_card_on_the_same_order_and_the_pickup_code(
        self, browser, server, shot, browser_localstripe
    ):
        """WeChat refuses; the pay page offers the three ways again; the buyer picks card (a plain
        form, no JavaScript needed) and pays on the same order; the order page shows the pickup
        code the point will ask for."""
        plain = phone_context(browser, javascript=False)
        page = plain.new_page()
        page.set_default_timeout(15_000)
        page.goto(server + "/auth/login")
        log_in(page)
        add_to_cart(page, server, TEA, 1)
        page.goto(server + "/cart/checkout")
        page.click("label.choice:has(input[name=delivery][value=pickup])")
        county = page.locator("select[name=pickup_county]")
        county.select_option(county.locator("option", has_text="梅县区").first.get_attribute("value"))
        with page.expect_navigation():
            page.click(".pickup-only button[name=action][value=pick]")
        page.locator(".points label.choice").first.click()
        page.click("label.choice:has(input[name=payment_method][value=wechat_pay])")
        with page.expect_navigation():
            page.click("button[name=action][value=place]")
        match = re.search(r"/cart/orders/(\d+)/pay$", page.url)
        assert match, page.url
        pay_url = page.url
        intent = re.search(
            r"/_test/payment_intents/(pi_\w+)/",
            page.locator(".pay-state a").first.get_attribute("href") or "",
        )
        assert intent, "the WeChat instructions link names the PaymentIntent"

        browser_localstripe.wallet_failed(intent.group(1))  # WeChat refuses
        page.goto(pay_url)
        assert page.locator(".pay-switch button[name=method]").count() == 3
        assert "仍为您保留" in page.locator("main").inner_text()  # the goods stay held
        fits_the_screenshot(shot(page, "retry-1-wechat-declined"))
        with page.expect_navigation():
            page.click(".pay-switch button[name=method][value=card]")
        assert page.url.endswith("/pay"), page.url
        state = plain.storage_state()
        plain.close()

        # Card needs Stripe.js: the same buyer, same order, with JavaScript on.
        context = phone_context(browser, storage_state=state)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(pay_url)
        page.locator(".card-element input[placeholder=number]").wait_for(state="visible")
        type_card(page, "4242424242424242")
        fits_the_phone(page)
        shot(page, "retry-2-card")
        page.click("#card-pay button[type=submit]")
        page.wait_for_url(re.compile(r"/cart/orders/\d+/return$"))
        page.wait_for_load_state()
        assert page.locator("[data-state=paid]").count() == 1
        assert parcels(page) == ["paid"]
        # Paid on the same order: the order's own page shows the pickup code.
        page.goto(f"{server}/orders/{match.group(1)}")
        code = page.locator("[data-pickup-code]")
        assert code.count() == 1, page.locator("main").inner_text()[:500]
        assert re.fullmatch(r"\d{6}", code.get_attribute("data-pickup-code") or "")
        fits_the_phone(page)
        shot(page, "retry-3-order-pickup-code")
        context.close()
