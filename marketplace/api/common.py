"""What every API blueprint shares: the base schema, bearer-token authentication and its OpenAPI
mark."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema

from marketplace.auth import actor
from services.errors import Unauthorized


class BaseSchema(Schema):
    """Every API schema's base: the schema-level messages in the user's language."""

    error_messages = {"unknown": _l("Unknown field."), "type": _l("Invalid input type.")}


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
