from flask import Blueprint

bp = Blueprint("commissions", __name__)

from marketplace.web.commissions import routes  # noqa: E402,F401
