"""Text as the pages take it, parsed exactly (Decimal, never float): prices in yuan, stocks, net
weights in 斤, kg or g."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from domain import MAX_PRICE_FEN, MAX_STOCK
from services.i18n import _

from .common import MAX_NET_WEIGHT_G, field_error

_NUMBER_RE = re.compile(r"^[0-9]{1,9}(?:\.[0-9]+)?$", re.ASCII)
WEIGHT_UNITS_G = {"jin": 500, "kg": 1000, "g": 1}


def _plain_number(raw: str | None) -> str:
    """Full-width digits (１２．５), currency signs, unit words and thousands separators removed."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    for junk in ("¥", "元", ",", " ", "RMB", "rmb"):
        text = text.replace(junk, "")
    return text.replace("。", ".")


def parse_yuan(raw: str | None, field: str = "price_fen") -> int:
    """A price typed in yuan ("12.5", "１２.５０", "¥12") as integer fen."""
    text = _plain_number(raw)
    if text.startswith("-") and _NUMBER_RE.match(text[1:]):
        raise field_error(field, _("Enter a price between ¥0.01 and ¥100,000."))
    if not _NUMBER_RE.match(text) or len(text.partition(".")[2]) > 2:
        raise field_error(field, _("Enter the price in yuan, such as 12.50."))
    fen = int(Decimal(text) * 100)
    if not 0 < fen <= MAX_PRICE_FEN:
        raise field_error(field, _("Enter a price between ¥0.01 and ¥100,000."))
    return fen


def parse_count(raw: str | None, field: str = "stock") -> int:
    """A stock typed as a whole number."""
    text = _plain_number(raw)
    if text.startswith("-") and text[1:].isdigit():
        raise field_error(field, _("Enter a stock between 0 and 1,000,000."))
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        raise field_error(field, _("Enter a whole number, such as 100."))
    count = int(text)
    if count > MAX_STOCK:
        raise field_error(field, _("Enter a stock between 0 and 1,000,000."))
    return count


def parse_weight_g(raw: str | None, unit: str, field: str = "net_weight_g") -> int | None:
    """A net weight typed in 斤, kg or g as whole grams; None when left empty."""
    text = _plain_number(raw)
    if not text:
        return None
    factor = WEIGHT_UNITS_G.get(unit)
    try:
        grams = Decimal(text) * factor if factor and _NUMBER_RE.match(text) else None
    except InvalidOperation:
        grams = None
    if grams is None or grams != grams.to_integral_value() or not 0 < grams <= MAX_NET_WEIGHT_G:
        raise field_error(field, _("Enter the net weight of one unit, such as 5 jin."))
    return int(grams)
