"""What every API blueprint shares: the base schema, the id and number fields, bearer-token
authentication and its OpenAPI mark, and the documented error answers of every operation."""

from __future__ import annotations

import http
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from marketplace.auth import actor
from services.errors import Unauthorized
from services.errors import ValidationError as ServiceValidationError
from services.orders.cart import MAX_LINE_QUANTITY
from services.validation import MAX_ID, MAX_INT64, parse_int

# --- ids and numbers: services.validation's rules as marshmallow fields -------------------------------


class BoundedInt(fields.Integer):
    """A whole number minimum..maximum (services.validation.parse_int): a JSON integer in a body,
    its digits with strict=False. Out of range: "Enter a whole number from … to …"."""

    def __init__(
        self, *, minimum: int, maximum: int, strict: bool = True, message: Any = None, **kwargs: Any
    ) -> None:
        self.minimum, self.maximum = minimum, maximum
        out_of_range = message or _l(
            "Enter a whole number from %(min)d to %(max)d.", min=minimum, max=maximum
        )
        kwargs.setdefault("validate", validate.Range(minimum, maximum, error=out_of_range))
        kwargs["error_messages"] = {
            "invalid": message or _l("Enter a whole number."),
            "too_large": message or _l("Enter a whole number."),
            **kwargs.get("error_messages", {}),
        }
        super().__init__(strict=strict, **kwargs)

    def _validated(self, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | str)
            or (self.strict and isinstance(value, str))
        ):
            raise self.make_error("invalid", input=value)
        try:
            # Bounds are the Range validator's to report; here only "is it a whole number".
            return parse_int(value, self.name or "value", minimum=-MAX_INT64 - 1, maximum=MAX_INT64)
        except ServiceValidationError as exc:
            raise self.make_error("invalid", input=value) from exc


class Id(BoundedInt):
    """An id, 1..MAX_ID (services.validation.parse_id's rule). In a JSON body a JSON integer; with
    strict=False (query strings) its digits as text. 2**64, "²", "①", 0, -1, 1e3: "Not a valid id."

    The Range validator is what the OpenAPI document shows (minimum, maximum)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, maximum=MAX_ID, message=_l("Not a valid id."), **kwargs)


class Quantity(BoundedInt):
    """How many units of one product in one order: 1..999 (services.orders.cart's maximum)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, maximum=MAX_LINE_QUANTITY, **kwargs)


def _is_id_name(name: str) -> bool:
    return name == "id" or name.endswith("_id")


class BaseSchema(Schema):
    """Every API schema's base: the schema-level messages in the user's language, and the one
    check of numbers: an Integer field named like an id (id, *_id) loads as an Id would (1..MAX_ID),
    any other Integer within a signed 64-bit column, whatever its declaration forgot."""

    error_messages = {"unknown": _l("Unknown field."), "type": _l("Invalid input type.")}

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        if not isinstance(field_obj, fields.Integer) or isinstance(field_obj, Id | BoundedInt):
            return
        if field_obj.dump_only:
            return
        if _is_id_name(field_obj.data_key or field_name):
            field_obj.validators.append(validate.Range(1, MAX_ID, error=_l("Not a valid id.")))
        else:
            bounds = _l("Enter a whole number from %(min)d to %(max)d.", min=-MAX_INT64 - 1, max=MAX_INT64)
            field_obj.validators.append(validate.Range(-MAX_INT64 - 1, MAX_INT64, error=bounds))


# --- authentication -----------------------------------------------------------------------------------

# The OpenAPI security requirement of an endpoint that needs a token.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 before the body is even read when there is no valid bearer token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not request.headers.get("Authorization", "").startswith("Bearer ") or actor() is None:
            raise Unauthorized()
        return view(*args, **kwargs)

    return wrapper


# --- the error answers every operation documents -----------------------------------------------------

# What any operation may answer, as marketplace/errors.py renders it ({code, message, errors}):
# a body that is not JSON we can take (400), no or a bad token (401), out of scope (403), an id
# that names nothing (404), a state that does not allow it (409), invalid fields (422), a limit
# (429). A route's own alt_response keeps its description; the body schema is added here.
ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429)


def _document_errors(
    doc: dict[str, Any], doc_info: dict[str, Any], *, api: Any, **kwargs: Any
) -> dict[str, Any]:
    """A flask-smorest doc callback, run last for every operation of a blueprint."""
    responses: dict[Any, Any] = doc.setdefault("responses", {})
    # Every answer is listed: no catch-all "default" that would make any status conform.
    responses.pop("default", None)
    statuses = {int(code) for code in responses}
    for code, answer in responses.items():
        if int(code) >= 400 and isinstance(answer, dict) and "content" not in answer:
            answer["content"] = {"application/json": {"schema": api.ERROR_SCHEMA}}
    for status in ERROR_STATUSES:
        if status not in statuses:
            # A response component flask-smorest registers for every status, with the error schema.
            responses[status] = http.HTTPStatus(status).name
    return doc


def document_errors(blp: Blueprint) -> None:
    """Make `blp` document ERROR_STATUSES on every operation (once per blueprint object)."""
    if _document_errors not in blp._prepare_doc_cbks:
        blp._prepare_doc_cbks.append(_document_errors)


def request_key(body: dict[str, Any]) -> str:
    """The idempotency key of a write: `idempotency_key` in the body, else the Idempotency-Key
    header; "" when neither (the service answers with its field error)."""
    return body.get("idempotency_key") or request.headers.get("Idempotency-Key") or ""
