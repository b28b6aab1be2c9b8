"""The expected pickup day and the point form's schedule and position on a 360×740 phone, in
headless Chromium against the seeded server (which runs on the real clock: no date is asserted)."""

from __future__ import annotations

import pytest

from tests.browser.test_phone_flows import MEIXIAN_AGENT, MEIXIAN_STAFF, log_in, no_horizontal_scroll

pytestmark = pytest.mark.browser


def test_an_agent_sees_when_produce_would_reach_their_point(phone_page, shot):
    page = phone_page
    log_in(page, MEIXIAN_AGENT)
    page.goto(page.base_url + "/c/fruit")
    with page.expect_navigation():
        page.click(".pcard a >> nth=0")
    line = page.inner_text("p.expected")
    assert "前下单，预计" in line and "取货" in line, line
    no_horizontal_scroll(page)
    shot(page, "product-expected-pickup")


def test_county_staff_fill_the_position_from_the_phone_and_see_errors(phone_page, shot):
    page = phone_page
    page.context.grant_permissions(["geolocation"])
    page.context.set_geolocation({"latitude": 24.412345, "longitude": 116.223456})
    log_in(page, MEIXIAN_STAFF)
    page.goto(page.base_url + "/manage/nodes?kind=village_point")
    with page.expect_navigation():
        page.click("a:has-text('大黄村电商服务站')")
    assert "位置为估计" in page.inner_text("fieldset.coords")
    page.click("[data-geolocate]")
    page.wait_for_function("document.querySelector('input[name=latitude]').value === '24.412345'")
    assert page.input_value("input[name=longitude]") == "116.223456"
    no_horizontal_scroll(page)
    shot(page, "point-form-position")
    page.fill("input[name=longitude]", "121.47")  # 上海
    with page.expect_navigation():
        page.click("form.stacked button[type=submit]")
    assert "广东" in page.inner_text("fieldset.coords .field-error")
    shot(page, "point-form-error")
