"""Domain errors. One place in the app maps them to HTTP (JSON for /api, a page for HTML).

Messages are lazy-translatable strings made by the raising code with services.i18n._;
they are rendered in the user's language at the edge.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, message: Any = None, *, field_errors: dict[str, list[Any]] | None = None):
        self.message = message if message is not None else self.default_message()
        self.field_errors = field_errors or {}
        super().__init__(str(self.message))

    @classmethod
    def default_message(cls) -> Any:
        from services.i18n import _

        return _("The request could not be processed.")


class ValidationError(ServiceError):
    status = 422
    code = "validation_error"


class NotFound(ServiceError):
    status = 404
    code = "not_found"

    @classmethod
    def default_message(cls) -> Any:
        from services.i18n import _

        return _("Not found.")


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"

    @classmethod
    def default_message(cls) -> Any:
        from services.i18n import _

        return _("You do not have permission to do this.")


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"

    @classmethod
    def default_message(cls) -> Any:
        from services.i18n import _

        return _("Please log in.")


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    @classmethod
    def default_message(cls) -> Any:
        from services.i18n import _

        return _("Too many attempts. Please try again later.")
