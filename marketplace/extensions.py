"""Extensions, created unbound and bound to the app in create_app()."""

from __future__ import annotations

import marshmallow as ma
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_smorest import Api
from flask_wtf import CSRFProtect


class ErrorSchema(ma.Schema):
    """Every API error, as marketplace.errors renders it."""

    code = ma.fields.String(metadata={"description": "Machine-readable code, e.g. validation_error"})
    message = ma.fields.String(metadata={"description": "Message in the user's language"})
    errors = ma.fields.Dict(metadata={"description": "Field name → messages, for validation errors"})


class MarketplaceApi(Api):
    ERROR_SCHEMA = ErrorSchema


login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)
api = MarketplaceApi()
