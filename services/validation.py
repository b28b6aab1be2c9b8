"""Input rules shared by services, forms and API schemas."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from services.errors import ValidationError
from services.i18n import _

# re.ASCII: without it \d also matches Arabic-Indic and other Unicode digits.
PHONE_RE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$", re.ASCII)
LANDLINE_OR_MOBILE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", re.ASCII)


# Every id column is a 32-bit INTEGER (PostgreSQL `integer`; a bind beyond it is "integer out of
# range", beyond 2**63 SQLite's "Python int too large"): an id outside 1..MAX_ID names nothing.
# Raise this to 2**63 - 1 together with a migration of every id column to BIGINT.
MAX_ID = 2**31 - 1
# Any other whole number the product stores fits a signed 64-bit column.
MAX_INT64 = 2**63 - 1
# A number as people type it: ASCII digits, or the full-width ０-９ of Chinese keyboards (and a
# full-width minus). Not ² or ① (isdigit() says yes, int() says no) nor other scripts' digits
# (int() reads them): NFKC would turn ² into 2, so the characters are checked before it.
_TYPED_INT_RE = re.compile(r"^[-\uff0d]?[0-9\uff10-\uff19]+$")
_MAX_DIGITS = 30  # longer is not a number anyone meant; refused before int() has to read it


def digits_up_to(limit: int) -> str:
    """A regular expression for the numbers 1..limit in ASCII digits without leading zeros, so
    that a URL rule matches exactly the ids and nothing else (e.g. "[1-9]|1[0-2]" for 12)."""
    digits = str(limit)
    parts = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:  # the same digits up to i, a smaller one at i, then any
            parts.append(f"{digits[:i]}[{lowest}-{int(digit) - 1}][0-9]{{{len(digits) - i - 1}}}")
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


ID_DIGITS = digits_up_to(MAX_ID)


def _typed_int(raw: Any) -> int | None:
    """The whole number in `raw` (an int, or text of digits as above), or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if len(text) > _MAX_DIGITS or not _TYPED_INT_RE.match(text):
        return None
    return int(unicodedata.normalize("NFKC", text))


def parse_id(raw: Any, field: str = "id") -> int:
    """An id as a URL, a form, a query string or JSON carries it: a whole number 1..MAX_ID.

    Anything else (2**64, ², ①, -1, 0, 1e3, "", true) is a ValidationError on `field`: an id that
    fits no row is no id, and must never reach the database (where it would overflow)."""
    value = _typed_int(raw)
    if value is None or not 1 <= value <= MAX_ID:
        msg = _("Not a valid id.")
        raise ValidationError(msg, field_errors={field: [msg]})
    return value


def id_or_none(raw: Any) -> int | None:
    """parse_id's answer, or None for what is no id (a lookup that will then find nothing)."""
    try:
        return parse_id(raw)
    except ValidationError:
        return None


def parse_int(raw: Any, field: str, *, minimum: int, maximum: int) -> int:
    """A whole number minimum..maximum typed by a person or sent as JSON (quantities, days).

    "12", " 12 ", "１２" and 12 are 12; "²", "①", "1e3", "1.5", "" and true are refused with
    "Enter a whole number.", numbers out of bounds with a message that says the bounds."""
    value = _typed_int(raw)
    if value is None:
        msg = _("Enter a whole number.")
        raise ValidationError(msg, field_errors={field: [msg]})
    if not minimum <= value <= maximum:
        msg = _("Enter a whole number from %(min)d to %(max)d.", min=minimum, max=maximum)
        raise ValidationError(msg, field_errors={field: [msg]})
    return value


def _halfwidth(raw: str) -> str:
    """Full-width digits and punctuation (１３８, －, ＋), as Chinese keyboards type them, as ASCII."""
    return unicodedata.normalize("NFKC", raw)


def normalize_phone(raw: str | None) -> str:
    """A Chinese mobile number: 11 digits starting 1[3-9]; spaces, dashes and +86 dropped."""
    phone = re.sub(r"[\s-]", "", _halfwidth(raw or ""))
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    if not PHONE_RE.match(phone):
        raise ValidationError(
            _("Enter an 11-digit mobile number starting with 1, e.g. 13812345678."),
            field_errors={"phone": [_("Enter an 11-digit mobile number starting with 1, e.g. 13812345678.")]},
        )
    return phone


def normalize_contact_phone(raw: str | None, field: str = "phone") -> str:
    """A service point's phone: a mobile number or a landline such as 0753-2222333."""
    phone = re.sub(r"\s", "", _halfwidth(raw or ""))
    if phone and not LANDLINE_OR_MOBILE_RE.match(phone):
        msg = _("Enter a mobile number or a landline such as 0753-2222333.")
        raise ValidationError(msg, field_errors={field: [msg]})
    return phone


def mask_phone(phone: str | None) -> str:
    """138****5678: how a phone number appears to anyone but its owner."""
    if not phone:
        return ""
    if len(phone) == 11:
        return f"{phone[:3]}****{phone[-4:]}"
    if len(phone) > 6:
        return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]
    return "*" * len(phone)


def check_password(password: str | None) -> str:
    password = password or ""
    if len(password) < 8 or len(password) > 128:
        msg = _("The password must be 8 to 128 characters long.")
        raise ValidationError(msg, field_errors={"password": [msg]})
    if password.isdigit() and len(set(password)) <= 2:
        msg = _("This password is too easy to guess.")
        raise ValidationError(msg, field_errors={"password": [msg]})
    return password


def check_opening_hours(raw: str | None) -> str:
    """Opening hours as 08:00-20:00 (empty allowed)."""
    hours = _halfwidth(raw or "").strip().replace("：", ":").replace("—", "-").replace("–", "-")
    hours = hours.replace(" ", "")
    if hours and not HOURS_RE.match(hours):
        msg = _("Enter opening hours as 08:00-20:00.")
        raise ValidationError(msg, field_errors={"opening_hours": [msg]})
    if hours and hours[:5] >= hours[6:]:
        msg = _("Closing time must be after opening time.")
        raise ValidationError(msg, field_errors={"opening_hours": [msg]})
    return hours


def check_text(raw: str | None, field: str, *, max_len: int, required: bool = False) -> str:
    """Plain text: trimmed, bounded, no control characters. HTML is escaped at render time."""
    text = (raw or "").strip()
    if required and not text:
        msg = _("This field is required.")
        raise ValidationError(msg, field_errors={field: [msg]})
    if len(text) > max_len:
        msg = _("At most %(n)d characters.", n=max_len)
        raise ValidationError(msg, field_errors={field: [msg]})
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        msg = _("Contains characters that are not allowed.")
        raise ValidationError(msg, field_errors={field: [msg]})
    if "<" in text and ">" in text:
        msg = _("HTML is not allowed here.")
        raise ValidationError(msg, field_errors={field: [msg]})
    return text
