"""Forms of the finance pages. The ledger service checks the holding period; the form carries it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired


class PayoutBatchForm(FlaskForm):
    holding_days = IntegerField(
        _l("Holding period (days)"),
        default=7,
        validators=[InputRequired(message=_l("This field is required."))],
        description=_l("Only orders completed at least this many days ago are paid out."),
    )


class MarkPaidForm(FlaskForm):
    """Only the CSRF token: the batch is in the URL."""
