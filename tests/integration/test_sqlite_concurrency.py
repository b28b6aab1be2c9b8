"""Under `make run` (a SQLite file, gunicorn threads) concurrent writers wait for each other
instead of failing with "database is locked" (issue 9, finding 12): the app's engine sets a busy
timeout and WAL, and takes the write lock at BEGIN (marketplace/db.py).

The dangerous shape is a transaction that reads, then writes: in SQLite's default (deferred)
mode two of them both hold read snapshots, and the second to write fails at once with
SQLITE_BUSY, whatever the busy timeout. This runs on a SQLite file whatever TEST_DATABASE says.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update
from sqlalchemy.orm import Session

from marketplace.db import make_engine

WRITERS = 8
ROUNDS = 15

metadata = MetaData()
counters = Table(
    "counters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
    Column("note", String(40), nullable=False, default=""),
)


def test_concurrent_read_then_write_transactions_all_succeed(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'run.db'}")
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(counters.insert().values(id=1, value=0))
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        start = threading.Barrier(WRITERS)
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            start.wait()
            for _ in range(ROUNDS):
                try:
                    with Session(engine) as session, session.begin():
                        # Read first (a stock check, a login's user row), then write.
                        value = session.execute(
                            select(counters.c.value).where(counters.c.id == 1)
                        ).scalar_one()
                        session.execute(
                            update(counters).where(counters.c.id == 1).values(value=value + 1, note=f"w{n}")
                        )
                except BaseException as exc:  # collected and asserted below
                    errors.append(exc)

        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(writer, range(WRITERS)))

        assert errors == []
        with engine.connect() as conn:
            # No lost update either: every read-then-write saw the previous one's result.
            assert conn.execute(select(counters.c.value)).scalar_one() == WRITERS * ROUNDS
    finally:
        engine.dispose()
