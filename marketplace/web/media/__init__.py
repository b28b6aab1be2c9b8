from flask import Blueprint

bp = Blueprint("media", __name__)

from marketplace.web.media import routes  # noqa: E402,F401
