"""Helpers shared by the HTML blueprints' forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for
from flask_wtf import FlaskForm

from services.errors import NotFound, ServiceError
from services.orders import cart as carts
from services.validation import MAX_INT64, id_or_none, parse_id, parse_int


def show_service_error(form: FlaskForm, exc: ServiceError) -> str | None:
    """Put a service's field errors on the form's fields; return the message for the rest.

    The form keeps what the user typed, so re-rendering it shows their input with the errors.
    """
    leftover: list[str] = []
    for field_name, messages in exc.field_errors.items():
        field = getattr(form, field_name, None)
        if field is None:
            leftover.extend(str(m) for m in messages)
            continue
        field.errors = [*field.errors, *(str(m) for m in messages)]
    if not exc.field_errors or leftover:
        return " ".join(leftover) or str(exc.message)
    return None


# Not a form error: the app's handler (marketplace/errors.py) answers these with its own page.
ACCESS_STATUSES = (401, 403, 404)


def reraise_access(exc: ServiceError, statuses: tuple[int, ...] = ACCESS_STATUSES) -> None:
    """Let the error page answer a refusal that is about access, not about what was typed."""
    if exc.status in statuses:
        raise exc


def form_status(exc: ServiceError) -> int:
    """The status of a form page re-rendered after a service refused the input: the error's own
    for no access, a conflict or a limit; 422 for everything else the user can fix."""
    return exc.status if exc.status in (403, 404, 409, 429) else 422


def form_error(
    form: Any,
    exc: ServiceError,
    *,
    reraise: tuple[int, ...] = ACCESS_STATUSES,
    renamed: Mapping[str, str] | None = None,
) -> tuple[str | None, int]:
    """A service's refusal on a form page: re-raise access errors (`reraise`), put the field
    errors on the form's fields (a service field name → form field via `renamed`), and return
    (the message for the rest, the page's status)."""
    reraise_access(exc, reraise)
    if renamed:
        exc.field_errors = {renamed.get(k, k): v for k, v in exc.field_errors.items()}
    return show_service_error(form, exc), form_status(exc)


# --- ids and numbers from pages: services.validation's rules, one place for every view ----------------


def query_id(name: str) -> int | None:
    """An id filter in the query string (?farmer=12): None when absent or empty; a 404 for what is
    no id (2**64, ², -1, 0), as an id in the path would be."""
    raw = request.args.get(name, "")
    if not raw.strip():
        return None
    value = id_or_none(raw)
    if value is None:
        raise NotFound()
    return value


def form_id(raw: Any, field: str) -> int:
    """An id a form posted (a radio button's value, a hidden field): a field error if it is none."""
    return parse_id(raw, field)


def typed_quantity(raw: Any, *, allow_zero: bool = False) -> int:
    """A quantity as typed: a whole number in ASCII or full-width digits ("²" and "①" are not),
    then the cart's own bounds and messages (1..999)."""
    value = parse_int(raw, "quantity", minimum=-MAX_INT64 - 1, maximum=MAX_INT64)
    return carts.parse_quantity(value, allow_zero=allow_zero)


def safe_next(target: str | None, fallback_endpoint: str = "main.workspace_index") -> str:
    """Where to go next: a path on this site only, never another host (no open redirect)."""
    fallback = url_for(fallback_endpoint)
    target = (target or "").strip()
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target
