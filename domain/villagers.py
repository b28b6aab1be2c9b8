"""Villagers: people a village agent shops for (代购), registered at the agent's point with their
recorded consent. A villager needs no account and no phone of their own; `user_id` is set when
the villager later registers an account (services.villagers.link_on_register)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .base import Base, str_enum


class ConsentMethod(enum.StrEnum):
    """How the villager agreed to be registered (and to have the agent shop for them)."""

    IN_PERSON = "in_person"  # said so in person at the point
    PAPER = "paper"  # signed a paper form the point keeps
    SMS = "sms"  # read out the SMS code sent to the (family) phone


class Villager(Base):
    __tablename__ = "villagers"
    __table_args__ = (
        # Registered twice: the same name in the same village with the same phone ("" for none).
        UniqueConstraint("point_id", "village_code", "name", "phone", name="uq_villagers_identity"),
        UniqueConstraint("point_id", "idempotency_key", name="uq_villagers_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    # Pinyin of the name, for finding them: full (wangxiuying) and initials (wxy).
    name_pinyin: Mapped[str] = mapped_column(String(160), default="", index=True)
    name_initials: Mapped[str] = mapped_column(String(40), default="", index=True)
    # Optional, and not unique: one family phone may serve several villagers.
    phone: Mapped[str] = mapped_column(String(11), default="", index=True)
    notes: Mapped[str] = mapped_column(String(200), default="")
    # The villager's own account, once they register with the phone (linked, not duplicated).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    consent_method: Mapped[ConsentMethod] = mapped_column(str_enum(ConsentMethod))
    consent_agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    consented_at: Mapped[datetime] = mapped_column(default=clock.now)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    point = relationship("Node", lazy="joined")
    village = relationship("Division", lazy="joined")
    consent_agent = relationship("User", foreign_keys=[consent_agent_id], lazy="select")
    user = relationship("User", foreign_keys=[user_id], lazy="select")

    def __repr__(self) -> str:
        return f"<Villager {self.id}>"
