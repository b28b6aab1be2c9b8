"""The cold-chain forms: registering a logger, uploading a logger's CSV export."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, Length


class LoggerForm(FlaskForm):
    serial = StringField(
        _l("Logger ID"),
        validators=[InputRequired(message=_l("Enter the logger's ID.")), Length(max=64)],
        render_kw={"maxlength": 64, "autocomplete": "off", "autocapitalize": "characters"},
    )
    place = SelectField(_l("Mounted in"), choices=[], validate_choice=False)
    storage_class = SelectField(
        _l("Storage class"),
        choices=[
            ("chilled", _l("Chilled 0–4 ℃")),
            ("frozen", _l("Frozen −18 ℃ or colder")),
            ("ambient", _l("Ambient (record only)")),
        ],
        validate_choice=False,
    )


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), render_kw={"accept": ".csv,text/csv"})


class ActionForm(FlaskForm):
    """A button's form: its CSRF token only (acknowledge, a new token)."""
