"""Template filters: money from integer fen, times in Asia/Shanghai, masked phone numbers, the
expected pickup sentence."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, url_for
from flask_babel import format_datetime

from domain import clock
from marketplace.charts import temperature_svg
from services.catalog import seller_name
from services.logistics.schedule import Estimate
from services.validation import mask_phone


def money(fen: int | None) -> str:
    """¥12.50 from 1250 fen. Integer arithmetic only: no float ever touches money."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def local_time(value: datetime | None, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """A UTC datetime shown in the configured zone (Asia/Shanghai)."""
    if value is None:
        return ""
    return format_datetime(value, fmt)


def static_url(filename: str) -> str:
    """A static file's URL with its content hash, so it can be cached for a year."""
    return url_for("static", filename=filename, v=_static_hash(filename))


@lru_cache(maxsize=64)
def _static_hash(filename: str) -> str:
    path = Path(current_app.static_folder or "") / filename
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def register_filters(app: Flask) -> None:
    app.jinja_env.globals["static_url"] = static_url
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.globals["role_label"] = role_label
    app.jinja_env.globals["node_kind_label"] = node_kind_label
    app.jinja_env.globals["order_status_label"] = order_status_label
    app.jinja_env.globals["seller_name"] = seller_name
    app.jinja_env.globals["expected_line"] = expected_line
    app.jinja_env.globals["temperature_svg"] = temperature_svg
    app.jinja_env.globals["weekdays_label"] = weekdays_label
    app.jinja_env.globals["scan_kind_label"] = scan_kind_label
    app.jinja_env.globals["shipment_status_label"] = shipment_status_label
    app.jinja_env.globals["storage_short_label"] = storage_short_label
    app.jinja_env.filters["eta"] = eta_label


def role_label(role: object) -> str:
    from flask_babel import gettext

    labels = {
        "buyer": gettext("Buyer"),
        "farmer": gettext("Farmer"),
        "agent": gettext("Village agent"),
        "county_staff": gettext("County center staff"),
        "dc_staff": gettext("Distribution center staff"),
        "merchant": gettext("Merchant"),
        "admin": gettext("Platform admin"),
    }
    return labels.get(getattr(role, "value", str(role)), str(role))


def node_kind_label(kind: object) -> str:
    from flask_babel import gettext

    labels = {
        "county_center": gettext("County service center"),
        "village_point": gettext("Village service point"),
        "distribution_center": gettext("Distribution center"),
    }
    return labels.get(getattr(kind, "value", str(kind)), str(kind))


def order_status_label(status: object) -> str:
    """A sub-order's status in words (every OrderStatus; pages and chips use this one list)."""
    from flask_babel import gettext

    labels = {
        "pending_payment": gettext("Awaiting payment"),
        "paid": gettext("Paid, awaiting the seller"),
        "accepted": gettext("Accepted by the seller"),
        "handed_in": gettext("Handed in at the service point"),
        "in_transit": gettext("In transit"),
        "ready_for_pickup": gettext("Ready for pickup"),
        "out_for_delivery": gettext("Out for delivery"),
        "completed": gettext("Completed"),
        "cancelled": gettext("Cancelled"),
        "refund_requested": gettext("Refund requested"),
        "refunded": gettext("Refunded"),
        "partially_refunded": gettext("Partially refunded"),
    }
    return labels.get(getattr(status, "value", str(status)), str(status))


def _weekday_names() -> tuple[str, ...]:
    from flask_babel import gettext

    return (
        gettext("Mon"),
        gettext("Tue"),
        gettext("Wed"),
        gettext("Thu"),
        gettext("Fri"),
        gettext("Sat"),
        gettext("Sun"),
    )


def _weekday(value: datetime) -> str:
    return _weekday_names()[value.weekday()]


def weekdays_label(days: str) -> str:
    """ "周一、周三、周五" from "135"; "every day" for all seven."""
    from flask_babel import gettext

    if set("1234567") <= set(days or ""):
        return gettext("Every day")
    names = _weekday_names()
    return ("、" if _chinese() else ", ").join(names[int(d) - 1] for d in days if d in "1234567")


def _chinese() -> bool:
    from flask_babel import get_locale

    return str(get_locale() or "").startswith("zh")


def day_label(value: datetime) -> str:
    """ "12月5日（周六）": a day of China's calendar with its weekday."""
    from flask_babel import gettext

    local = clock.local(value)
    return gettext(
        "%(month)d/%(day)d (%(weekday)s)", month=local.month, day=local.day, weekday=_weekday(local)
    )


def expected_line(estimate: Estimate | None) -> str:
    """ "22:00前下单，预计12月5日（周六）下午可在大黄村服务点取货" from a schedule.Estimate; "" for
    none. The cut-off's day is named when it is not today."""
    from flask_babel import gettext

    if estimate is None:
        return ""
    ready = clock.local(estimate.ready_at)
    order_by = clock.local(estimate.order_by)
    by = f"{order_by:%H:%M}"
    if order_by.date() != clock.today():
        by = ("" if _chinese() else " ").join((day_label(order_by), by))
    part = (
        gettext("morning")
        if ready.hour < 12
        else gettext("afternoon")
        if ready.hour < 18
        else gettext("evening")
    )
    if estimate.to_door:
        return gettext(
            "Order by %(by)s: expected at your door on %(day)s in the %(part)s.",
            by=by,
            day=day_label(ready),
            part=part,
        )
    return gettext(
        "Order by %(by)s: expected ready for pickup at %(place)s on %(day)s in the %(part)s.",
        by=by,
        day=day_label(ready),
        part=part,
        place=estimate.place,
    )


def scan_kind_label(kind: object) -> str:
    """A scan in words (ScanKind)."""
    from flask_babel import gettext

    labels = {
        "collected": gettext("Collected"),
        "departed": gettext("Departed"),
        "arrived": gettext("Arrived"),
        "delivered": gettext("Delivered"),
        "exception": gettext("Exception"),
    }
    return labels.get(getattr(kind, "value", str(kind)), str(kind))


def shipment_status_label(status: object) -> str:
    """Where a shipment stands, in words (ShipmentStatus)."""
    from flask_babel import gettext

    labels = {
        "at_origin": gettext("Handed in, waiting to leave"),
        "moving": gettext("On its way"),
        "at_node": gettext("At a transfer center"),
        "ready": gettext("Ready for pickup"),
        "out_for_delivery": gettext("Out for delivery"),
        "delivered": gettext("Delivered"),
        "returning": gettext("Being returned"),
        "returned": gettext("Returned"),
    }
    return labels.get(getattr(status, "value", str(status)), str(status))


def storage_short_label(storage: object) -> str:
    """常温 / 冷藏 / 冷冻: a parcel's storage class in one word (labels, lists)."""
    from flask_babel import gettext

    labels = {
        "ambient": gettext("Room temperature"),
        "chilled": gettext("Chilled"),
        "frozen": gettext("Frozen"),
    }
    return labels.get(getattr(storage, "value", str(storage)), str(storage))


def part_of_day(hour: int) -> str:
    from flask_babel import gettext

    if hour < 6:
        return gettext("before dawn")
    if hour < 12:
        return gettext("morning")
    if hour < 18:
        return gettext("afternoon")
    return gettext("evening")


def eta_label(value: datetime | None) -> str:
    """An expected arrival as people say it, in Asia/Shanghai: 预计 12月5日 下午."""
    from babel.dates import format_skeleton
    from flask_babel import get_locale, gettext, to_user_timezone

    if value is None:
        return ""
    local = to_user_timezone(value)
    day = format_skeleton("MMMd", local, locale=get_locale())
    return gettext("Expected %(day)s %(part)s", day=day, part=part_of_day(local.hour))
