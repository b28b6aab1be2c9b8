from flask import Blueprint

bp = Blueprint("places", __name__)

from marketplace.web.places import routes  # noqa: E402,F401
