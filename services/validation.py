"""Input rules shared by services, forms and API schemas."""

from __future__ import annotations

import re
import unicodedata

from services.errors import ValidationError
from services.i18n import _

# re.ASCII: without it \d also matches Arabic-Indic and other Unicode digits.
PHONE_RE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$", re.ASCII)
LANDLINE_OR_MOBILE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", re.ASCII)


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
