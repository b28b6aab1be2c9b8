"""Routes of the media blueprint."""

from marketplace.web.media import bp  # noqa: F401
