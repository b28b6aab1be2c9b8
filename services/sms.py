"""The SMS gateway interface and its default implementation, a database outbox."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import SmsMessage


class SmsGateway(Protocol):
    def send(self, phone: str, body: str) -> None:
        """Send one text message to a Chinese mobile number."""


class OutboxSmsGateway:
    """Writes each message to the sms_outbox table, in the caller's transaction.

    The default for development and demos: the messages are shown on /dev/sms. A production
    gateway (Aliyun, Tencent Cloud SMS) implements the same `send` and is chosen by SMS_GATEWAY.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def send(self, phone: str, body: str) -> None:
        self.session.add(SmsMessage(phone=phone, body=body))


def make_gateway(name: str, session: Session) -> SmsGateway:
    """The gateway named by configuration."""
    if name == "outbox":
        return OutboxSmsGateway(session)
    raise ValueError(f"unknown SMS gateway {name!r}; only 'outbox' ships with the code")


def list_outbox(session: Session, *, limit: int = 50) -> list[SmsMessage]:
    """The latest messages the outbox gateway wrote, newest first (for the /dev/sms page)."""
    limit = max(1, min(int(limit), 500))
    stmt = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()).limit(limit)
    return list(session.scalars(stmt))
