from flask import Blueprint

bp = Blueprint("finance", __name__)

from marketplace.web.finance import routes  # noqa: E402,F401
