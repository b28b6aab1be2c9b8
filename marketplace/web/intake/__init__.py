from flask import Blueprint

bp = Blueprint("intake", __name__)

from marketplace.web.intake import routes  # noqa: E402,F401
