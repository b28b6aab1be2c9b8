"""A campaign's report for admins (services/campaigns/reports.py): the page, and its CSV and
Excel files."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, render_template
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.campaign_reports import bp
from services import exports
from services.campaigns import reports


@bp.get("/<int:campaign_id>/report")
@login_required
def report(campaign_id: int):  # type: ignore[no-untyped-def]
    found = reports.campaign_report(get_session(), actor(), campaign_id)  # admins only
    return render_template("campaign_reports/report.html", report=found)


def _download(data: bytes, mimetype: str, report: reports.Report, ext: str) -> Response:
    """The file, named campaign-<id>-report.<ext> for old clients and with the campaign's own
    name (RFC 6266 filename*) for the rest."""
    ascii_name = f"campaign-{report.campaign_id}-report.{ext}"
    own_name = quote(f"{report.name}-活动报表.{ext}", safe="")
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{own_name}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:campaign_id>/report.csv")
@login_required
def report_csv(campaign_id: int):  # type: ignore[no-untyped-def]
    found = reports.campaign_report(get_session(), actor(), campaign_id)
    return _download(reports.report_csv(found), "text/csv", found, "csv")


@bp.get("/<int:campaign_id>/report.xlsx")
@login_required
def report_xlsx(campaign_id: int):  # type: ignore[no-untyped-def]
    found = reports.campaign_report(get_session(), actor(), campaign_id)
    return _download(reports.report_xlsx(found), exports.XLSX_TYPE, found, "xlsx")
