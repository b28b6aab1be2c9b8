"""Schemas of the villagers API: shapes only (services.villagers checks every rule)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from domain import ConsentMethod
from marketplace.api.catalog.schemas import ListedErrorsSchema, _enum, _text
from marketplace.api.common import BaseSchema, Id


class VillagerQuerySchema(ListedErrorsSchema):
    q = _text(
        load_default="",
        validate=validate.Length(max=40, error=_l("At most 40 characters.")),
        metadata={
            "description": "A name (or part), phone digits, or pinyin / its initials",
            "example": "wxy",
        },
    )
    point_id = Id(
        strict=False,
        load_default=None,
        metadata={
            "description": "County staff: the village point whose villagers to list (agents: their own)"
        },
    )


class VillagerCreateSchema(ListedErrorsSchema):
    name = _text(required=True, metadata={"description": "At most 40 characters", "example": "王秀英"})
    village_code = _text(
        required=True, metadata={"description": "A village of the point's town", "example": "441423100201"}
    )
    phone = _text(
        load_default="",
        metadata={
            "description": "Optional, may be a family phone several villagers share",
            "example": "13800000061",
        },
    )
    notes = _text(
        load_default="", metadata={"description": "At most 200 characters", "example": "送到女儿家"}
    )
    consent_method = _enum(
        ConsentMethod,
        required=True,
        metadata={
            "description": "How the villager agreed: in_person, paper (signed form), sms (code read out)"
        },
    )
    code = _text(load_default="", metadata={"description": "consent_method sms: the 6-digit code read out"})
    point_id = Id(
        load_default=None, allow_none=True, metadata={"description": "Agents of several points: which one"}
    )
    idempotency_key = _text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64, error=_l("At most 64 characters.")),
        metadata={
            "description": "Or the Idempotency-Key header: a repeated request returns the same villager"
        },
    )


class VillagerPatchSchema(ListedErrorsSchema):
    notes = _text(required=True, metadata={"description": "At most 200 characters", "example": "送到女儿家"})


class ConsentCodeSchema(ListedErrorsSchema):
    phone = _text(required=True, metadata={"description": "The villager's (family) mobile number"})


class VillagerSchema(BaseSchema):
    """A villager in full (the point's agent, the county's staff, the villager themself)."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True, metadata={"example": "王秀英"})
    phone = fields.String(dump_only=True, metadata={"description": "'' when none"})
    village_name = fields.String(dump_only=True)
    point_id = fields.Integer(dump_only=True)
    notes = fields.String(dump_only=True)
    consent_method = fields.String(dump_only=True)
    consented_at = fields.DateTime(dump_only=True, allow_none=True)
    consent_agent_id = fields.Integer(dump_only=True, allow_none=True)
    linked = fields.Boolean(
        dump_only=True, metadata={"description": "The villager has an account of their own"}
    )
    full = fields.Boolean(dump_only=True, metadata={"description": "false: name and phone are masked"})
