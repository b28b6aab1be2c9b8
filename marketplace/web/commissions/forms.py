"""The commission rate form: one rate of a county, in percent (empty clears it)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length


class RateForm(FlaskForm):
    kind = HiddenField()
    category_id = HiddenField()
    rate = StringField(
        _l("Rate (%)"),
        validators=[Length(max=8)],
        render_kw={"inputmode": "decimal", "maxlength": 8, "autocomplete": "off"},
    )
