"""Cold-chain API: loggers (or a gateway reading several out) send their temperature readings in
batches; services/logistics/coldchain.py stores them and finds the excursions.

Authentication, either way in the Authorization header:
* `Bearer lgr_…`: the logger's own token, shown once when county or DC staff registered it; the
  batch may hold that logger's readings only.
* `Bearer gdm_…`: a staff member's API token (POST /api/v1/auth/tokens): the readings of any
  logger that person manages (county staff: their county's nodes; DC staff: their center).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import func, select

from domain import ExcursionLot
from marketplace.api.coldchain.schemas import ReadingsInSchema, ReadingsResultSchema
from marketplace.api.common import BEARER
from marketplace.auth import actor
from marketplace.db import get_session
from services.errors import Unauthorized
from services.logistics import coldchain

blp = Blueprint("api_coldchain", __name__, description="Temperature readings from cold-chain loggers")


def _source() -> coldchain.Source:
    header = request.headers.get("Authorization", "")
    secret = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
    if secret.startswith(coldchain.TOKEN_PREFIX):
        logger = coldchain.authenticate_logger(get_session(), secret)
        if logger is None:
            raise Unauthorized()
        return coldchain.Source(logger=logger)
    user = actor()
    if user is None:
        raise Unauthorized()
    return coldchain.Source(user=user)


def grace() -> timedelta:
    return timedelta(minutes=int(current_app.config.get("COLD_CHAIN_GRACE_MINUTES", 30)))


@blp.route("/readings", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(ReadingsInSchema)
@blp.response(200, ReadingsResultSchema)
@blp.alt_response(401, description="No valid logger token or staff token")
@blp.alt_response(403, description="A staff token of someone who manages no logger")
@blp.alt_response(422, description="No readings, more than a batch takes, or not a list")
def readings(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A batch of readings. Good items are stored, bad ones (unknown logger, absurd temperature,
    a time without its UTC offset or far from now, another temperature for a time already stored)
    come back by index with the reason; a re-sent batch stores nothing again (`duplicates`)."""
    session = get_session()
    result = coldchain.ingest_batch(session, _source(), body["readings"], grace=grace())
    lots = dict(
        session.execute(
            select(ExcursionLot.excursion_id, func.count())
            .where(ExcursionLot.excursion_id.in_([e.id for e in result.excursions]))
            .group_by(ExcursionLot.excursion_id)
        ).all()
    )
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "error_count": result.error_count,
        "errors": [{"index": e.index, "message": str(e.message)} for e in result.errors],
        "excursions": [
            {
                "id": e.id,
                "logger": e.logger.serial,
                "started_at": e.started_at,
                "ended_at": e.ended_at,
                "worst_celsius": e.worst_tenths / 10,
                "lots": lots.get(e.id, 0),
            }
            for e in result.excursions
        ],
    }
