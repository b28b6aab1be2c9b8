"""Routes of the sell blueprint."""

from marketplace.web.sell import bp  # noqa: F401
