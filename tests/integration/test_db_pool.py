"""The PostgreSQL pool (marketplace/db.py): a connection the server dropped while it sat idle is
replaced before it is lent; one used a moment ago is lent without a ping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from marketplace import db
from marketplace.db import make_engine
from tests.conftest import PG_ADMIN_URL, backend

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="kills PostgreSQL backends: SQLite has no server connection"
)


@pytest.fixture
def pool(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=1)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _server_drops(pid: int) -> None:
    """What a server restart or an idle-connection firewall does to one pooled connection."""
    admin = make_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_it_is_lent(pool, monkeypatch):
    first = _backend_pid(pool)
    _server_drops(first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough

    assert _backend_pid(pool) != first  # the ping failed, a new connection served the request


def test_a_connection_used_a_moment_ago_is_lent_without_a_ping(pool):
    first = _backend_pid(pool)
    assert _backend_pid(pool) == first  # the same connection, kept in the pool
    _server_drops(first)

    # Not pinged, so the request that gets it sees the drop; SQLAlchemy then discards the pool,
    # and the next request gets a new connection.
    with pytest.raises(OperationalError):
        _backend_pid(pool)
    assert _backend_pid(pool) != first
