"""Routes of the shop blueprint."""

from marketplace.web.shop import bp  # noqa: F401
