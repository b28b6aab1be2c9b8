from flask import Blueprint

bp = Blueprint("cash", __name__)

from marketplace.web.cash import routes  # noqa: E402,F401
