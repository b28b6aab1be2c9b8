from flask import Blueprint

bp = Blueprint("hubs", __name__)

from marketplace.web.hubs import routes  # noqa: E402,F401
