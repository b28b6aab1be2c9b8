"""Periodic jobs' bookkeeping: one row per registered job, its lease and its last run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class JobRun(Base):
    """The last run of one job (services/jobs.py REGISTRY) and the lease that stops two runners.

    A runner takes the job by an atomic conditional UPDATE of `locked_until` (free or expired);
    a runner that crashed leaves a lease that simply runs out.
    """

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    locked_by: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    ok: Mapped[bool | None] = mapped_column(default=None)
    result: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    runs: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
