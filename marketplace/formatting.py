"""Template filters: money from integer fen, times in Asia/Shanghai, masked phone numbers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, url_for
from flask_babel import format_datetime

from services.catalog import seller_name
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
