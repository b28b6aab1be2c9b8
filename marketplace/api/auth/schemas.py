"""Marshmallow schemas of the accounts API. Shapes only: the services check the rules."""

from __future__ import annotations

import enum
from typing import Any

from flask_babel import gettext
from marshmallow import Schema, ValidationError, fields, validate

from domain import Role, SmsPurpose
from marketplace.api.common import BaseSchema
from services.validation import mask_phone


class PublicSmsPurpose(enum.StrEnum):
    """The codes anyone may ask for (services.accounts.PUBLIC_SMS_PURPOSES), an enum of their own
    so that the OpenAPI document lists only these."""

    REGISTER = SmsPurpose.REGISTER.value
    RESET_PASSWORD = SmsPurpose.RESET_PASSWORD.value


def public_purpose(value: PublicSmsPurpose) -> SmsPurpose:
    return SmsPurpose(value.value)


def N_(message: str) -> str:
    """Marks a message for extraction; TranslatedSchema.handle_error translates it per request."""
    return message


_REQUIRED = {
    "required": N_("This field is required."),
    "null": N_("This field is required."),
    "invalid": N_("Not a valid value."),
}


def _text(**kwargs: Any) -> fields.String:
    return fields.String(error_messages=_REQUIRED, **kwargs)


def _enum(enum: type, **kwargs: Any) -> fields.Enum:
    return fields.Enum(
        enum,
        by_value=True,
        # No {choices} placeholder: a formatted message could not be looked up in the catalog.
        error_messages={**_REQUIRED, "unknown": N_("Not one of the allowed values.")},
        **kwargs,
    )


def _translated(messages: Any) -> Any:
    if isinstance(messages, str):
        return gettext(messages)
    if isinstance(messages, list):
        return [_translated(m) for m in messages]
    if isinstance(messages, dict):
        return {k: _translated(v) for k, v in messages.items()}
    return messages


class TranslatedSchema(BaseSchema):
    """Request schemas: messages marked with N_, translated when the error is raised."""

    error_messages = {
        "unknown": N_("Unknown field."),
        "type": N_("Invalid input type."),
    }

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        raise ValidationError(_translated(error.messages), data=data, valid_data=error.valid_data)


# --- requests ------------------------------------------------------------------------------------


class SmsCodeRequestSchema(TranslatedSchema):
    phone = _text(
        required=True, metadata={"description": "Chinese mobile number, 11 digits", "example": "13812345678"}
    )
    # Only the codes anyone may ask for: a listing-consent code is sent when a village agent
    # enrols a farmer (POST /catalog/...), never on request of whoever knows the number.
    purpose = _enum(
        PublicSmsPurpose,
        required=True,
        metadata={"description": "register or reset_password; the same answer for every number"},
    )


class RegisterSchema(TranslatedSchema):
    phone = _text(required=True, metadata={"example": "13812345678"})
    code = _text(required=True, metadata={"description": "The 6-digit code from the SMS"})
    password = _text(required=True, load_only=True, metadata={"description": "8 to 128 characters"})
    display_name = _text(load_default="")
    roles = fields.List(
        _enum(Role),
        load_default=lambda: [Role.BUYER],
        metadata={"description": "Self-service roles only: buyer, farmer, merchant"},
    )
    locale = _text(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(["zh_Hans_CN", "en"], error=N_("Not one of the allowed values.")),
    )


class TokenRequestSchema(TranslatedSchema):
    phone = _text(required=True, metadata={"example": "13812345678"})
    password = _text(required=True, load_only=True)
    name = _text(load_default="", metadata={"description": "What the token is for, e.g. the app's name"})
    device_token = _text(
        load_default="",
        load_only=True,
        validate=validate.Length(max=128, error=N_("Not a valid value.")),
        metadata={
            "description": "The device_token an earlier login answered: the owner's usual device "
            "is let in with the right password while the number backs off after wrong ones"
        },
    )


class PasswordResetSchema(TranslatedSchema):
    phone = _text(required=True)
    code = _text(required=True)
    new_password = _text(required=True, load_only=True)


class UserQuerySchema(TranslatedSchema):
    phone = _text(
        load_default="",
        validate=validate.Regexp(r"^[0-9]{11}$", error=N_("Enter the whole 11-digit mobile number.")),
        metadata={"description": "The whole mobile number (11 digits); a part of it finds nobody"},
    )


class GrantRequestSchema(TranslatedSchema):
    role = _enum(Role, required=True)
    node_id = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        error_messages=_REQUIRED,
        metadata={"description": "Village service point (agent) or distribution center (dc_staff)"},
    )
    county_code = _text(
        load_default=None, allow_none=True, metadata={"description": "County code (county_staff)"}
    )


# --- responses -----------------------------------------------------------------------------------


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "Send as 'Authorization: Bearer <token>'. Shown once."})
    expires_at = fields.DateTime()
    device_token = fields.String(
        metadata={"description": "Keep it on the device and send it with the next logins (device_token)"}
    )


class RoleGrantSchema(Schema):
    id = fields.Integer()
    role = fields.Enum(Role, by_value=True)
    node_id = fields.Integer(allow_none=True)
    node_kind = fields.Function(lambda g: g.node.kind.value if g.node is not None else None, allow_none=True)
    node_name = fields.Function(lambda g: g.node.name if g.node is not None else None, allow_none=True)
    county_code = fields.String(allow_none=True)
    county_name = fields.Function(lambda g: g.county.name if g.county is not None else None, allow_none=True)


class MeSchema(Schema):
    """The caller's own account: the phone number in full."""

    id = fields.Integer()
    phone = fields.String()
    display_name = fields.String()
    locale = fields.String(allow_none=True)
    created_at = fields.DateTime()
    grants = fields.List(fields.Nested(RoleGrantSchema))


class UserSummarySchema(Schema):
    """Someone else's account as staff see it: the phone number masked."""

    id = fields.Integer()
    phone_masked = fields.Function(lambda u: mask_phone(u.phone), metadata={"example": "138****5678"})
    display_name = fields.String()
    grants = fields.List(fields.Nested(RoleGrantSchema))
