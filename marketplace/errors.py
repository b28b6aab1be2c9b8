"""The one place that maps errors to HTTP: JSON {code, message} under /api, a page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from marketplace.db import get_session
from services.errors import ServiceError

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


def error_response(status: int, message: str, code: str | None = None, errors: dict | None = None):  # type: ignore[no-untyped-def]
    code = code or HTTP_CODES.get(status, "error")
    if wants_json():
        body: dict = {"code": code, "message": message}
        if errors:
            body["errors"] = errors
        return jsonify(body), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
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
        log.exception("unhandled error", exc_info=exc)
        try:
            get_session().rollback()
        except Exception:  # the session itself may be what failed
            log.exception("rollback failed")
        return error_response(500, _messages()[500])
