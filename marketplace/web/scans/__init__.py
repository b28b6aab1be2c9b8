from flask import Blueprint

bp = Blueprint("scans", __name__)

from marketplace.web.scans import routes  # noqa: E402,F401
