from flask import Blueprint

bp = Blueprint("standing", __name__)

from marketplace.web.standing import routes  # noqa: E402,F401
