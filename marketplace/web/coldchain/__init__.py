from flask import Blueprint

bp = Blueprint("coldchain", __name__)

from marketplace.web.coldchain import routes  # noqa: E402,F401
