"""梅县's county staff on a 360×740 phone: the seeded van's excursion (it marks no lot: only
room-temperature demo goods were aboard, and an excursion marks the lots kept in the range its
logger watches), acknowledged; the loggers page and the CSV upload form (issue 12, items 7 and 9)."""

from __future__ import annotations

import pytest

from tests.browser.test_phone_flows import MEIXIAN_STAFF, log_in, no_horizontal_scroll

pytestmark = pytest.mark.browser
# The page's own list (the offline queue, hidden, has one too: county staff have the queue).
LIST = "main > ul.list"


class TestColdChainPages:
    def test_county_staff_see_the_excursion_and_acknowledge_it(self, phone_page, shot):
        page = phone_page
        log_in(page, MEIXIAN_STAFF)
        page.goto(page.base_url + "/coldchain/excursions")
        assert "冷链温度异常" in page.inner_text("h1")
        item = page.inner_text(LIST + " li")
        assert "MX-VAN-01" in item and "0～4℃" in item and "受影响批次" in item
        assert page.locator(LIST + " li a[href^='/t/']").count() == 0  # pomelos are not chilled goods
        no_horizontal_scroll(page)
        shot(page, "coldchain-excursions")
        with page.expect_navigation():
            page.click(LIST + " li form button")
        assert "没有未处理的温度异常" in page.inner_text(LIST)

    def test_the_loggers_and_the_upload_form_fit_a_phone(self, phone_page, shot):
        page = phone_page
        log_in(page, MEIXIAN_STAFF)
        page.goto(page.base_url + "/coldchain/loggers")
        assert "MX-COLD-01" in page.inner_text(LIST) and "登记记录仪" in page.content()
        no_horizontal_scroll(page)
        shot(page, "coldchain-loggers")
        page.goto(page.base_url + "/coldchain/upload")
        no_horizontal_scroll(page)
        shot(page, "coldchain-upload")
