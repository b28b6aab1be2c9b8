from flask import Blueprint

bp = Blueprint("offline", __name__)

from marketplace.web.offline import routes  # noqa: E402,F401
