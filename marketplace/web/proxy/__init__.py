from flask import Blueprint

bp = Blueprint("proxy", __name__)

from marketplace.web.proxy import routes  # noqa: E402,F401
