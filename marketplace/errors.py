"""The one place that maps errors to HTTP: JSON {code, message} under /api, a page elsewhere.

It also refuses, before any view runs, the input that would otherwise end in a 500 however the
view is written: an id in a URL that fits no id column (a 404), and a JSON body that is not JSON,
holds text no column can store (a lone surrogate, a NUL) or is nested deeper than any request of
ours (a 400)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter, Map

from marketplace.db import get_session
from services.errors import ServiceError
from services.validation import ID_DIGITS, MAX_ID

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


def _messages() -> dict[int, str]:
    return {
        400: gettext("The request could not be understood."),
        401: gettext("Please log in."),
        403: gettext("You do not have permission to see this page."),
        404: gettext("This page does not exist."),
        405: gettext("This action is not allowed here."),
        409: gettext("This conflicts with the current state."),
        413: gettext("The upload is too large."),
        415: gettext("This content type is not supported."),
        422: gettext("Please correct the marked fields."),
        429: gettext("Too many attempts. Please try again later."),
        500: gettext("Something went wrong on our side. Please try again."),
    }


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def _keyed_by_text(messages: Any) -> Any:
    """Field errors with text keys only: marshmallow keys a list's items by index, next to the
    list's own "_schema" messages, and JSON (sorted keys) cannot mix the two."""
    if isinstance(messages, dict):
        return {str(k): _keyed_by_text(v) for k, v in messages.items()}
    if isinstance(messages, list | tuple):
        return [_keyed_by_text(m) for m in messages]
    return messages


def error_response(status: int, message: str, code: str | None = None, errors: dict | None = None):  # type: ignore[no-untyped-def]
    code = code or HTTP_CODES.get(status, "error")
    if wants_json():
        body: dict = {"code": code, "message": message}
        if errors:
            body["errors"] = _keyed_by_text(errors)
        return jsonify(body), status
    return render_template("errors/error.html", status=status, message=message), status


# --- input no view should ever see -------------------------------------------------------------------


class IdConverter(IntegerConverter):
    """Flask's <int:…>, as every route uses it for ids: ASCII digits, 1..MAX_ID. Anything else
    (2**64, ², ①, 0) matches no route, a 404, instead of overflowing the id column."""

    # Exactly 1..MAX_ID, so that no rule half-matches a bad id (werkzeug would answer 405 when
    # another method's rule has the same path); \d would also match other scripts' digits.
    regex = ID_DIGITS

    def __init__(
        self, map: Map, fixed_digits: int = 0, min: int = 1, max: int = MAX_ID, signed: bool = False
    ):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


# Deeper than any body the API takes (an order is 3 levels); far below Python's recursion limit.
MAX_JSON_DEPTH = 20
# Text no column can store: lone surrogates (PostgreSQL and SQLite refuse them as UTF-8) and NUL.
UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be taken, or None. Walks the parsed value without recursion."""
    try:
        value = json.loads(body.decode("utf-8"))
    except RecursionError:
        return gettext("The request is nested too deeply.")
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return gettext("The request body is not valid JSON.")
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return gettext("The request is nested too deeply.")
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return gettext("Contains characters that are not allowed.")
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def refuse_unusable_input():  # type: ignore[no-untyped-def]
    """A 400 before the view for input no view could store; None lets the request through."""
    if not request.is_json or request.content_length == 0:
        return None  # forms and query strings arrive as UTF-8 text: no lone surrogate gets in
    body = request.get_data(cache=True)  # webargs and the views read the same cached bytes
    problem = _json_problem(body) if body else None
    if problem is not None:
        return error_response(400, problem)
    return None


def init_input_guards(app: Flask) -> None:
    """Called before the web and API blueprints are registered: their <int:…> rules are built
    with the converter in place (tests/e2e/test_bad_input.py checks every rule)."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_unusable_input)


def init_app(app: Flask) -> None:
    init_input_guards(app)

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):  # type: ignore[no-untyped-def]
        get_session().rollback()
        errors = {k: [str(m) for m in v] for k, v in exc.field_errors.items()} or None
        return error_response(exc.status, str(exc.message), exc.code, errors)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):  # type: ignore[no-untyped-def]
        return error_response(
            400, gettext("This form has expired. Please go back, reload the page and try again."), "csrf"
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        if status == 500:
            return internal_error(exc)
        # flask-smorest puts marshmallow messages in exc.data["messages"].
        data = getattr(exc, "data", None) or {}
        errors = data.get("messages") if isinstance(data, dict) else None
        if status == 422 and isinstance(errors, dict) and len(errors) == 1:
            errors = next(iter(errors.values()))  # {"json": {...}} → {...}
        message = _messages().get(status, exc.description or "")
        body, status = error_response(status, message, None, errors)
        response = make_response(body, status)
        for key, value in exc.get_headers():
            if key.lower() in ("retry-after", "allow", "www-authenticate"):
                response.headers[key] = value
        return response

    @app.errorhandler(InternalServerError)
    @app.errorhandler(Exception)
    def internal_error(exc: Exception):  # type: ignore[no-untyped-def]
        if isinstance(exc, HTTPException) and exc.code != 500:
            return http_error(exc)
        if isinstance(exc, OperationalError) and "database is locked" in str(exc):
            # SQLite's busy timeout (marketplace/db.py) ran out under a burst of writes: nothing
            # was written (the transaction rolled back), so the client may simply try again.
            get_session().rollback()
            body, status = error_response(503, gettext("The site is busy. Please try again in a moment."))
            response = make_response(body, status)
            response.headers["Retry-After"] = "2"
            return response
        log.exception("unhandled error", exc_info=exc)
        try:
            get_session().rollback()
        except Exception:  # the session itself may be what failed
            log.exception("rollback failed")
        return error_response(500, _messages()[500])
