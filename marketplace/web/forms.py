"""Helpers shared by the HTML blueprints' forms."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import url_for
from flask_wtf import FlaskForm

from services.errors import ServiceError


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
