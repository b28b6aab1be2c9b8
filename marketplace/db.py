"""Engine and sessionmaker built in the app factory; one session per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection idle longer than this is pinged before it is lent again (a server restart
# or a firewall may have dropped it); one used a moment ago is not: a request opens several
# short transactions (around the payment gateway's call), and a ping before each was a round
# trip and about half a millisecond of CPU apiece.
PING_AFTER_IDLE_S = 10.0


def make_engine(url: str, echo: bool = False, *, pool_size: int = 15) -> Engine:
    """An engine with the settings each backend needs for a web app.

    PostgreSQL: `pool_size` connections per process, kept open, and no overflow: connections
    beyond the pool were closed again on their return, so a busy worker reconnected (a backend
    process started in PostgreSQL) many times a second. A request waits for a free connection
    instead. Keep workers × pool_size within the server's max_connections (docs/deploy.md)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs: dict = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        if url in ("sqlite://", "sqlite:///:memory:"):
            from sqlalchemy.pool import StaticPool

            kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=0)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name != "sqlite":
        _ping_when_idle(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # pysqlite's own transaction handling breaks SAVEPOINT and transactional DDL;
            # let SQLAlchemy emit BEGIN itself (the recipe in SQLAlchemy's SQLite docs).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # IMMEDIATE: take the write lock at BEGIN, waiting up to busy_timeout for it. A
            # deferred transaction that read first and then writes fails at once with "database
            # is locked" when another writer committed in between (WAL cannot upgrade a stale
            # snapshot, and busy_timeout does not apply): under `make run`'s threads a log-in
            # collided that way with webhook writes. SQLite has one writer anyway.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pessimistic disconnect handling, for idle connections only: a connection
    that fails its ping is discarded and the pool hands out another (DisconnectionError on
    checkout; SQLAlchemy's "Disconnect Handling - Pessimistic" recipe, with an idle threshold)."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _lent(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return  # new, or used a moment ago
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError() from exc


class Database:
    """What the app keeps of the database: the engine and how to open a session."""

    def __init__(self, url: str, echo: bool = False, *, pool_size: int = 15) -> None:
        self.engine = make_engine(url, echo, pool_size=pool_size)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Tests replace this to hand every request the test's transactional session, which
        # then outlives the request (lend_session).
        self.session_factory: Callable[[], Session] = self.sessionmaker
        self._lent: Session | None = None

    def lend_session(self, session: Session | None) -> None:
        """Serve every request from `session` (kept open across requests); None to stop."""
        self._lent = session
        self.session_factory = (lambda: session) if session is not None else self.sessionmaker

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session for a command or task outside a request, closed after (a lent one is kept)."""
        session = self.session_factory()
        try:
            yield session
        finally:
            if session is not self._lent:
                session.close()

    def init_app(self, app: Flask) -> None:
        app.extensions["database"] = self
        app.teardown_appcontext(self._close_session)

    def _close_session(self, exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            if session is not self._lent:
                session.close()


def get_db() -> Database:
    return current_app.extensions["database"]


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_db().session_factory()
    return g.db_session
