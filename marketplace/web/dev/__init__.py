from flask import Blueprint

bp = Blueprint("dev", __name__)

from marketplace.web.dev import routes  # noqa: E402,F401
