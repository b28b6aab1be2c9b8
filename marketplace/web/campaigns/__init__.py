from flask import Blueprint

bp = Blueprint("campaigns", __name__)

from marketplace.web.campaigns import routes  # noqa: E402,F401
