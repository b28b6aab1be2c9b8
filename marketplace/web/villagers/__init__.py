from flask import Blueprint

bp = Blueprint("villagers", __name__)

from marketplace.web.villagers import routes  # noqa: E402,F401
