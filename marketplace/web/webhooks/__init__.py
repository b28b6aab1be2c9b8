from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from marketplace.web.webhooks import routes  # noqa: E402,F401
