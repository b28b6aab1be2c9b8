from flask import Blueprint

bp = Blueprint("sell", __name__)

from marketplace.web.sell import routes  # noqa: E402,F401
