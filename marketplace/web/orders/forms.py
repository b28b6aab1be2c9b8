"""Forms of the order pages. Every action is a POST carrying the CSRF token; the services check
who may do what in which state, and refund amounts are parsed exactly by services.catalog."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length

_required = InputRequired(message=_l("This field is required."))
REASON_ATTRS = {"maxlength": 200, "rows": 2}


class ActionForm(FlaskForm):
    """A button that changes an order (cancel, mark ready, handed in): the CSRF token and where
    to go back to."""

    next = HiddenField()


class MoveForm(ActionForm):
    """One of the generic moves the state machine offers (accept, in transit, completed, …).
    Handing a pickup parcel over takes the buyer's pickup code (checked by the service)."""

    target = HiddenField()
    note = StringField(_l("Note (optional)"), validators=[Length(max=200)], render_kw={"maxlength": 200})
    pickup_code = StringField(
        _l("The buyer's pickup code"),
        validators=[Length(max=16)],
        render_kw={
            "inputmode": "numeric",
            "autocomplete": "one-time-code",
            "maxlength": 6,
            "pattern": "[0-9]{6}",
        },
    )


class DeclineForm(ActionForm):
    reason = TextAreaField(
        _l("Why can you not fill this order?"),
        validators=[_required, Length(max=200)],
        render_kw=REASON_ATTRS,
    )


class RefundRequestForm(ActionForm):
    reason = TextAreaField(
        _l("Why do you want your money back?"),
        validators=[_required, Length(max=200)],
        render_kw=REASON_ATTRS,
    )


class StaffRefundForm(ActionForm):
    amount = StringField(
        _l("Amount in yuan (empty: all that is left)"),
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    reason = TextAreaField(_l("Reason"), validators=[_required, Length(max=200)], render_kw=REASON_ATTRS)
    # Made when the form is shown: a double tap or a resent form refunds once.
    key = HiddenField()
    # Units of each line are sent as units-<line id> (the lines vary); this field only carries
    # their errors.
    units = HiddenField()


UNITS_PREFIX = "units-"
