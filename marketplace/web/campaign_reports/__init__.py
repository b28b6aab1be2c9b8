from flask import Blueprint

bp = Blueprint("campaign_reports", __name__)

from marketplace.web.campaign_reports import routes  # noqa: E402,F401
