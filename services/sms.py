"""The SMS gateway interface and its default implementation, a database outbox."""

from __future__ import annotations

from collections.abc import Callable
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
    gateway (Aliyun, Tencent Cloud SMS) implements the same `send` and is chosen by SMS_GATEWAY
    in marketplace/gateways.py.

    `current_session` returns the session to write through at each send: the app builds one
    gateway and shares it, while every request (or task) has its own session and transaction.
    """

    def __init__(self, current_session: Callable[[], Session]) -> None:
        self._current_session = current_session

    def send(self, phone: str, body: str) -> None:
        self._current_session().add(SmsMessage(phone=phone, body=body))


def list_outbox(session: Session, *, limit: int = 50) -> list[SmsMessage]:
    """The latest messages the outbox gateway wrote, newest first (for the /dev/sms page)."""
    limit = max(1, min(int(limit), 500))
    stmt = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()).limit(limit)
    return list(session.scalars(stmt))
