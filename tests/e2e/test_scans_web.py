"""The staff's scan page and a parcel's printed label (issue 12, item 2): a node's staff scan a
parcel out and in through the page (applied, repeated: nothing changed, refused with what comes
next: nothing written), an offline replay with the same key applies once; the A6 label PDF for
the seller, the origin's staff and admins only; the same timeline with an ETA on the buyer's
order page, the agent's proxy order page and the sub-order page."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
import zlib

import pytest

from domain import OrderStatus, Scan, SellerProfile, SubOrder
from services.orders import checkout, manage
from services.orders.pricing import CheckoutSettings
from tests.conftest import count
from tests.factories import (
    carry,
    city_address,
    credit_proxy_order,
    handed_in,
    receive,
)

S = OrderStatus
REPLAY = {"X-Offline-Submit": "replay"}


def key() -> str:
    return checkout.new_idempotency_key()


@pytest.fixture()
def parcel(session, market, gateway, world, first_village) -> SubOrder:  # type: ignore[no-untyped-def]
    """梅县 pomelos for a city buyer's door, handed in at the farmer's point."""
    return handed_in(session, market, gateway, world, {"梅县蜜柚": 2}, address=city_address(first_village))


def status_of(session, sub: SubOrder) -> OrderStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found.status


def scan(client, node_id: int, label: str, kind: str, **extra: str):  # type: ignore[no-untyped-def]
    data = {"node_id": str(node_id), "label": label, "kind": kind, "key": key(), "note": "", **extra}
    return client.post("/scan", data=data, headers=extra.pop("headers", None) or {})


def page_text(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


class TestTheScanPage:
    def test_the_node_is_preselected_and_the_field_ready_for_a_scanner(self, as_user, world, parcel):
        html = page_text(as_user(world.agent).get("/scan"))
        assert "扫描包裹" in html and f'name="node_id" value="{world.point.id}"' in html
        assert re.search(r'<input[^>]*autofocus[^>]*name="label"|<input[^>]*name="label"[^>]*autofocus', html)
        assert "data-offline" in html and 'name="key"' in html
        # The parcel waits at the point to leave for the county center.
        here = html.split("parcels-here")[1].split("</ul>")[0]
        assert parcel.number in here and world.center.name in here
        assert f"/parcels/{parcel.number}/label.pdf" in here  # handed in here: its label

    def test_applied_then_repeated_changes_nothing(self, session, as_user, world, parcel):
        client = as_user(world.agent)
        first = scan(client, world.point.id, parcel.number.lower(), "departed")
        assert first.status_code == 302
        assert (
            f"node={world.point.id}" in first.headers["Location"]
            and "kind=departed" in first.headers["Location"]
        )
        shown = page_text(client.get(first.headers["Location"]))
        assert "flash-success" in shown and parcel.number in shown
        assert status_of(session, parcel) == S.IN_TRANSIT and count(session, Scan) == 2
        today = shown.split("scans-today")[1].split("</ul>")[0]
        assert parcel.number in today and 'data-kind="departed"' in today
        again = scan(client, world.point.id, parcel.number, "departed")
        assert again.status_code == 302
        assert "flash-info" in page_text(client.get(again.headers["Location"]))
        assert count(session, Scan) == 2
        # The county center sees it on its way, then scans it in.
        center = as_user(world.county_staff)
        inbound = page_text(center.get("/scan")).split("parcels-inbound")[1].split("</ul>")[0]
        assert parcel.number in inbound
        assert scan(center, world.center.id, parcel.number, "arrived").status_code == 302
        assert count(session, Scan) == 3

    def test_out_of_order_is_refused_with_what_comes_next_and_nothing_written(
        self, session, as_user, world, parcel
    ):
        resp = scan(as_user(world.county_staff), world.center.id, parcel.number, "arrived")
        assert resp.status_code == 409
        html = page_text(resp)
        assert 'role="alert"' in html and "下一步应为" in html and world.point.name in html
        assert parcel.number in html  # the refused label is named; the field is empty again
        assert 'name="label" type="text" value=""' in html or 'value=""' in html.split('name="label"')[1][:80]
        assert count(session, Scan) == 1 and status_of(session, parcel) == S.HANDED_IN

    def test_another_node_s_staff_and_unknown_labels_are_form_errors(self, session, as_user, world, parcel):
        # The DC's staff posting for the point they do not work at: refused on the form.
        dc = as_user(world.dc_staff)
        stranger = scan(dc, world.point.id, parcel.number, "departed")
        assert stranger.status_code == 403 and 'role="alert"' in page_text(stranger)
        assert world.point.name in page_text(stranger)
        unknown = scan(as_user(world.agent), world.point.id, "NOPE-1", "departed")
        assert unknown.status_code == 404 and "没有标签为 NOPE-1 的包裹" in page_text(unknown)
        empty = scan(as_user(world.agent), world.point.id, "  ", "departed")
        assert empty.status_code == 422 and 'role="alert"' in page_text(empty)
        no_note = scan(as_user(world.agent), world.point.id, parcel.number, "exception")
        assert no_note.status_code == 422 and 'role="alert"' in page_text(no_note)
        bad_node = scan(as_user(world.agent), world.point.id + 10_000, parcel.number, "departed")
        assert bad_node.status_code == 404 and 'role="alert"' in page_text(bad_node)
        assert count(session, Scan) == 1 and status_of(session, parcel) == S.HANDED_IN

    def test_an_exception_is_recorded_with_its_note_and_moves_nothing(self, session, as_user, world, parcel):
        resp = scan(as_user(world.agent), world.point.id, parcel.number, "exception", note="外箱压坏")
        assert resp.status_code == 302
        assert count(session, Scan) == 2 and status_of(session, parcel) == S.HANDED_IN
        assert "外箱压坏" in page_text(as_user(world.agent).get("/scan"))

    def test_an_offline_replay_with_its_key_applies_once(self, session, as_user, world, parcel):
        client = as_user(world.agent)
        data = {
            "node_id": str(world.point.id),
            "label": parcel.number,
            "kind": "departed",
            "key": key(),
            "note": "",
            "scanned_at": "2026-11-26T03:30:00.000Z",
        }
        first = client.post("/scan", data=data, headers=REPLAY)
        assert first.status_code == 200 and first.get_json()["location"].startswith("/scan")
        second = client.post("/scan", data=data, headers=REPLAY)
        assert second.status_code == 200 and "location" in second.get_json()  # sent, not refused
        assert count(session, Scan) == 2 and status_of(session, parcel) == S.IN_TRANSIT
        made = session.scalars(Scan.__table__.select().order_by(Scan.id.desc())).first()
        assert made is not None

    def test_people_who_work_at_no_node_are_refused(self, as_user, market):
        assert as_user(market.buyer).get("/scan").status_code == 403
        assert as_user(market.shop.meixian_farmer).get("/scan").status_code == 403


def pdf_pages(body: bytes) -> str:
    """The PDF's objects as text, with its compressed streams inflated."""
    text = body.decode("latin-1")
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", body, re.S):
        data = raw.strip()
        if data.endswith(b"~>"):  # ASCII85 around Flate (reportlab's default for pages)
            data = base64.a85decode(re.sub(rb"\s", b"", data[:-2]))
        try:
            text += zlib.decompress(data).decode("latin-1")
        except zlib.error:
            continue
    return text


class TestTheLabel:
    def test_the_seller_the_origin_s_staff_and_admins_get_an_a6_pdf_with_the_font(
        self, as_user, admin, market, world, parcel
    ):
        url = f"/parcels/{parcel.number}/label.pdf"
        for who in (market.shop.meixian_farmer, world.agent, admin):
            resp = as_user(who).get(url)
            assert resp.status_code == 200, who
            assert resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF-")
            text = pdf_pages(resp.data)
            box = re.search(r"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", text)
            assert box is not None
            width, height = float(box.group(1)), float(box.group(2))
            assert abs(width - 297.64) < 0.5 and abs(height - 419.53) < 0.5  # 105 × 148 mm
            assert "/FontFile2" in text and "WenQuanYiMicroHei" in text  # the Chinese font, embedded
            assert f"({parcel.number}) Tj" in text  # the label under its barcode
            if shutil.which("pdftotext"):  # poppler-utils: the Chinese text reads back
                with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
                    f.write(resp.data)
                    f.flush()
                    words = subprocess.run(["pdftotext", f.name, "-"], capture_output=True, check=True).stdout
                words = words.decode()
                assert parcel.number in words and "寄件" in words and "收件" in words and "常温" in words
                assert world.point.name in words and "黄**" in words and "139****5678" in words

    def test_everyone_else_is_refused(self, as_user, market, world, parcel, make_user):
        url = f"/parcels/{parcel.number}/label.pdf"
        for who in (market.buyer, world.dc_staff, world.county_staff_sd, make_user()):
            assert as_user(who).get(url).status_code == 404, who
        assert as_user(world.agent).get("/parcels/NOPE-1/label.pdf").status_code == 404

    def test_the_sub_order_page_links_to_it_for_the_seller_not_the_buyer(self, as_user, market, parcel):
        page = f"/orders/sub/{parcel.number}"
        link = f"/parcels/{parcel.number}/label.pdf"
        assert link in page_text(as_user(market.shop.meixian_farmer).get(page))
        assert link not in page_text(as_user(market.buyer).get(page))


class TestTheTimeline:
    def test_the_buyer_sees_status_eta_legs_and_scans(self, session, as_user, market, world, parcel):
        carry(session, parcel, to_the_end=False)
        html = page_text(as_user(market.buyer).get(f"/orders/{parcel.order.number}"))
        section = html.split(f'data-journey="{parcel.number}"')[1].split("</section>")[0]
        assert "预计" in section and 'data-eta="' in html
        assert section.count("data-leg=") == 4
        assert world.point.name in section and world.dc.name in section and "→ 送货上门" in section
        assert section.count('data-leg-status="arrived"') == 3 and 'data-leg-status="planned"' in section
        kinds = re.findall(r'data-scan="(\w+)"', section)
        assert kinds == ["arrived", "departed"] * 3 + ["collected"]  # recent first

    def test_a_sub_order_without_a_shipment_shows_nothing_new(self, as_user, market, gateway):
        order = market.pay(market.place({"梅县蜜柚": 1}, CheckoutSettings()), gateway)
        html = page_text(as_user(market.buyer).get(f"/orders/{order.number}"))
        assert "data-journey" not in html

    def test_the_agent_follows_a_villager_s_parcel_on_the_proxy_order_page(
        self, session, as_user, market, gateway, checkout_settings, world, make_user
    ):
        """The villager's goods come in at the county center (the farmer has no home point), travel
        to the agent's point and arrive: the agent sees the same journey as a buyer would."""
        order = credit_proxy_order(session, market, checkout_settings, world.point, world.agent, make_user)
        (sub,) = order.sub_orders
        profile = session.get(SellerProfile, market.shop.meixian_farmer.id)
        profile.home_point_id = None
        session.commit()
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        receive(session, gateway, sub, by=world.county_staff)
        carry(session, sub)
        assert status_of(session, sub) == S.READY_FOR_PICKUP
        html = page_text(as_user(world.agent).get(f"/agent/proxy/orders/{order.number}"))
        section = html.split(f'data-journey="{sub.number}"')[1].split("</section>")[0]
        assert "待取货" in section and "data-ready" in section and "data-eta" not in section
        assert section.count("data-leg=") == 1 and f"{world.center.name} → {world.point.name}" in section
        assert re.findall(r'data-scan="(\w+)"', section) == ["arrived", "departed", "collected"]
        # The same on the staff's sub-order page, where the origin's staff may print its label.
        staff_page = page_text(as_user(world.county_staff).get(f"/orders/sub/{sub.number}"))
        assert f'data-journey="{sub.number}"' in staff_page
        assert f"/parcels/{sub.number}/label.pdf" in staff_page


@pytest.mark.parametrize(
    ("utc", "zh", "en"),
    [
        ((2026, 12, 5, 7, 0), "预计 12月5日 下午", "Expected Dec 5 afternoon"),
        ((2026, 12, 4, 17, 30), "预计 12月5日 凌晨", "Expected Dec 5 before dawn"),  # 01:30 in China
        ((2026, 12, 5, 11, 0), "预计 12月5日 晚上", "Expected Dec 5 evening"),
    ],
)
def test_an_eta_is_said_as_people_say_it_in_china_s_time(app, utc, zh, en):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from flask_babel import force_locale

    from marketplace.formatting import eta_label

    at = datetime(*utc, tzinfo=UTC)
    with app.test_request_context():
        with force_locale("zh_Hans_CN"):
            assert eta_label(at) == zh
        with force_locale("en"):
            assert eta_label(at) == en
