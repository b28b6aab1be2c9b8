"""The scan page and a parcel's journey on a 360×740 phone against the seeded server (issue 12,
item 2): the 大黄村 agent scans an incoming parcel the way a USB scanner does (type, Enter), sees
the result on top with the field empty and focused again, then follows it on its sub-order page
(timeline, ETA); a label nobody has is refused on the form; 梅县's county staff have their page."""

from __future__ import annotations

import pytest

from tests.browser.test_phone_flows import MEIXIAN_AGENT, MEIXIAN_STAFF, log_in, no_horizontal_scroll

pytestmark = pytest.mark.browser


def test_the_agent_scans_an_incoming_parcel_and_follows_it(phone_page, shot):
    page = phone_page
    log_in(page, MEIXIAN_AGENT)
    page.goto(page.base_url + "/scan")
    assert page.inner_text("h1") == "扫描包裹"
    assert page.evaluate("document.activeElement.name") == "label"
    no_horizontal_scroll(page)
    shot(page, "scan-page")
    incoming = page.locator(".parcels-inbound li[data-label]")
    if incoming.count() == 0:
        pytest.skip("the seed has no parcel on its way to 大黄村")
    label = incoming.first.get_attribute("data-label")
    assert label
    page.check("input[name=kind][value=arrived]")
    page.fill("input[name=label]", label)
    with page.expect_navigation():
        page.press("input[name=label]", "Enter")  # what a USB scanner sends after the label
    assert label in page.locator(".flash").first.inner_text()
    assert page.input_value("input[name=label]") == ""
    assert page.evaluate("document.activeElement.name") == "label"
    assert page.locator(f".scans-today li[data-label='{label}'][data-kind=arrived]").count() == 1
    assert page.locator(f".parcels-here li[data-label='{label}']").count() == 1
    shot(page, "scan-page-after-scan")

    page.goto(page.base_url + f"/orders/sub/{label}")
    journey = page.locator(f"[data-journey='{label}']")
    assert journey.count() == 1
    assert journey.locator("[data-scan=arrived]").count() >= 1
    no_horizontal_scroll(page)
    shot(page, "sub-order-journey")


def test_a_label_nobody_has_is_refused_on_the_form(phone_page, shot):
    page = phone_page
    log_in(page, MEIXIAN_AGENT)
    page.goto(page.base_url + "/scan")
    page.fill("input[name=label]", "NOPE-1")
    page.press("input[name=label]", "Enter")
    page.wait_for_selector("main [role=alert]")
    assert "NOPE-1" in page.inner_text("main [role=alert]")
    assert page.input_value("input[name=label]") == ""
    no_horizontal_scroll(page)
    shot(page, "scan-page-refused")


def test_county_staff_have_their_center_s_page_and_proxy_orders_show_the_journey(phone_page, shot):
    page = phone_page
    log_in(page, MEIXIAN_STAFF)
    page.goto(page.base_url + "/scan")
    assert "县域" in page.inner_text(".scan-node")
    no_horizontal_scroll(page)
    shot(page, "scan-page-county")
    page.context.clear_cookies()
    log_in(page, MEIXIAN_AGENT)
    page.goto(page.base_url + "/agent/proxy/orders")
    links = page.locator("a[href*='/agent/proxy/orders/']")
    for i in range(links.count()):
        page.goto(page.base_url + "/agent/proxy/orders")
        page.locator("a[href*='/agent/proxy/orders/']").nth(i).click()
        if page.locator("[data-journey]").count():
            shot(page, "proxy-order-journey")
            no_horizontal_scroll(page)
            return
    pytest.skip("no proxy order of the seed has a shipment")
