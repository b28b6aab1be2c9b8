from flask import Blueprint

bp = Blueprint("agent", __name__)

from marketplace.web.agent import routes  # noqa: E402,F401
