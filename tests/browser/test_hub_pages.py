"""A hub's day on a 360×740 phone (issue 12, item 9): 梅县's county staff open their center's
day from the workspace, add a vehicle, build pallets and plan the day; the page fits the phone."""

from __future__ import annotations

import pytest

from tests.browser.test_phone_flows import MEIXIAN_STAFF, log_in, no_horizontal_scroll

pytestmark = pytest.mark.browser


class TestTheHubDay:
    def test_county_staff_plan_their_center_s_day_on_a_phone(self, phone_page, shot):
        page = phone_page
        log_in(page, MEIXIAN_STAFF)
        page.goto(page.base_url + "/workspace")
        with page.expect_navigation():
            page.click("text=车辆、托盘和路线")
        with page.expect_navigation():
            page.click("text=梅县区县域电子商务综合服务中心")
        assert "路线计划" in page.inner_text("main")
        assert "粤M·A3271" in page.inner_text("#vehicles")  # the seeded van

        page.click("#new-vehicle summary")
        form = page.locator("#new-vehicle form")
        form.locator("input[name=plate]").fill("粤M·B7260")
        form.locator("input[name=capacity_kg]").fill("1200")
        form.locator("input[name=capacity_m3]").fill("7.5")
        form.locator("input[name=shift_start]").fill("07:30")
        form.locator("input[name=shift_end]").fill("17:30")
        with page.expect_navigation():
            form.locator("[type=submit]").click()
        assert "粤M·B7260" in page.inner_text("#vehicles")

        with page.expect_navigation():
            page.click("#pallets form [type=submit]")
        with page.expect_navigation():
            page.click("#plan form [type=submit]")
        assert "当天路线已安排" in page.inner_text("main")
        no_horizontal_scroll(page)
        shot(page, "hub-day")
