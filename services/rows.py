"""New rows of the domain model written with one INSERT a table, kept in the session as loaded.

The unit of work (`Session.flush`) is the right tool for most writes, but on the hottest write
of all, placing an order (an order, its sub-orders, lines, payment and first payment attempt;
services/orders/checkout.py), its bookkeeping cost more CPU than everything else the checkout
does in Python: sorting the mappers and their dependencies, tracking every attribute's history,
cascading, then building each INSERT (docs/benchmarks.md, issue 13's fourth session).

`insert_new` writes new objects of one mapped class with a single Core INSERT … RETURNING id,
copies the new ids into the foreign keys of the objects that point at them (in both directions
of a relationship), and `attach` then puts the whole graph into the session as persistent,
unmodified objects, as if just read back: nothing left to flush, nothing reloaded, the
relationships already set (order.sub_orders, sub.lines, order.payment …) readable without SQL.

What it does not do, and what its callers must not need: before/after-insert mapper events (the
model has none), server-side defaults (every column here has a Python default, which is applied
to the object and the row alike), versioning, or polymorphic mappers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Dialect, Executable, Table, insert, inspect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.interfaces import ONETOMANY

_Plan = tuple[str, list[tuple[str, Any]], Any]


def _plan(mapper: Mapper[Any]) -> _Plan:
    """The primary key's attribute, for every other column (attribute, its default), and the
    INSERT … RETURNING id, built once (building a statement costs more than running it)."""
    (pk,) = mapper.primary_key
    pk_attr = mapper.get_property_by_column(pk).key
    columns: list[tuple[str, Any]] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if column is pk:
            continue
        default = column.default
        if default is not None and not (default.is_scalar or default.is_callable):
            raise TypeError(f"{mapper.class_.__name__}.{prop.key}: only Python defaults are supported")
        columns.append((prop.key, default))
    statement = insert(cast(Table, mapper.local_table)).returning(pk, sort_by_parameter_order=True)
    return pk_attr, columns, statement


_PLANS: dict[type, _Plan] = {}  # per class, made on first use


def insert_new(session: Session, objects: Sequence[Any]) -> None:
    """INSERT `objects`, new (transient) instances of one mapped class, in one statement in the
    session's transaction; set their ids and the foreign keys of related objects that point at
    them. Call `attach` once the whole graph is written."""
    if not objects:
        return
    cls = type(objects[0])
    mapper: Mapper[Any] = inspect(cls)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(mapper)
    pk_attr, columns, statement = plan
    rows = []
    for obj in objects:
        if type(obj) is not cls:
            raise TypeError("insert_new writes objects of one class at a time")
        values = obj.__dict__
        row = {}
        for key, default in columns:
            if key not in values:
                # The default, on the object too: a missing attribute would be read back later.
                value = None if default is None else _default_value(default)
                setattr(obj, key, value)
            row[key] = values[key]
        rows.append(row)
    if len(rows) == 1:  # one row: a plain execute, not the many-rows batching
        ids = [session.execute(statement, rows[0]).scalar_one()]
    else:
        ids = list(session.execute(statement, rows).scalars())
    for obj, new_id in zip(objects, ids, strict=True):
        setattr(obj, pk_attr, new_id)
        _sync_keys(mapper, obj)


def _sync_keys(mapper: Mapper[Any], obj: Any) -> None:
    """Copy `obj`'s new id into the foreign keys of the objects its one-to-many relationships
    hold (what the unit of work calls sync): they are written after it."""
    for rel in mapper.relationships:
        if rel.direction is not ONETOMANY or rel.key not in obj.__dict__:
            continue
        held = obj.__dict__[rel.key]
        for child in held if rel.uselist else (() if held is None else (held,)):
            child_mapper: Mapper[Any] = inspect(type(child))
            for parent_col, child_col in rel.local_remote_pairs or ():
                key = child_mapper.get_property_by_column(child_col).key
                setattr(child, key, getattr(obj, mapper.get_property_by_column(parent_col).key))


def table(cls: type[Any]) -> Table:
    """A mapped class's table, for a Core INSERT of rows nobody reads back as objects."""
    return cast(Table, inspect(cls).local_table)


def attach(session: Session, objects: Iterable[Any]) -> None:
    """Put objects written by `insert_new` into the session as persistent and unmodified."""
    objects = list(objects)
    for obj in objects:
        make_transient_to_detached(obj)
    for obj in objects:
        if obj not in session:  # (adding the order already cascaded to its sub-orders, lines …)
            session.add(obj)


# A statement and its parameters: one set, or a list of sets (executemany; no rows back).
Statement = tuple[Executable, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def run_in_turn(
    session: Session, statements: Sequence[Statement], *, commit: bool = False
) -> list[list[tuple[Any, ...]]]:
    """Run Core statements built once (no expanding parameters) one after the other in the
    session's transaction and return each one's rows (RETURNING; none for a list of sets).
    With `commit`, then commit the session (its transaction ends, with nothing left to flush:
    pending ORM changes are flushed first, before the statements).

    On PostgreSQL they go to the server in one round trip (psycopg's pipeline mode), the COMMIT
    too: the server runs them in order without waiting for the app between two of them. A
    checkout's contended rows (the product's stock, a flash sale's quota) are locked by the first
    and held until the commit; one at a time, each statement's answer waited for the app's next
    turn, which in a worker busy with a crowd is when the others queued behind the lock. If one
    fails, the ones after it and the COMMIT are not run, and the error is raised (the caller
    rolls back). Elsewhere (SQLite) they run one by one. A statement run this way is not seen by
    SQLAlchemy's execute events."""
    if commit:
        session.flush()
    connection = session.connection()
    # The COMMIT goes with the statements only when the session's transaction is the database's:
    # a session joined to an outer transaction (the tests') commits a savepoint.
    commit_here = commit and not connection.in_nested_transaction()
    if connection.dialect.driver != "psycopg" or len(statements) + commit_here < 2 or not _pipelines():
        answers = [_one_by_one(session, statement, params) for statement, params in statements]
        if commit:
            session.commit()
        return answers
    raw = connection.connection.driver_connection
    assert raw is not None
    cursors = []
    with raw.pipeline():  # sent together; the answers are read when the block ends
        for statement, params in statements:
            cursor = raw.cursor()
            if isinstance(params, Mapping):
                sql, values = _for_driver(connection.dialect, statement, [params])
                cursor.execute(sql, values[0])
            elif params:  # (an empty list of sets is no row, not one row of defaults)
                sql, values = _for_driver(connection.dialect, statement, list(params))
                cursor.executemany(sql, values)
            cursors.append(cursor)
        if commit_here:
            # As a statement, queued with the others: psycopg's own commit() would wait for its
            # answer here, and the block's end for another.
            raw.cursor().execute("COMMIT")
    answers = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
    if commit:
        # The session's bookkeeping; the driver, no longer in a transaction, sends nothing.
        session.commit()
    return answers


def _one_by_one(
    session: Session, statement: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    connection = session.connection()  # Core statements: a CursorResult, as the pipeline's
    if not isinstance(params, Mapping):
        if params:  # (an empty list of sets is no row, not one row of defaults)
            connection.execute(statement, [dict(p) for p in params])
        return []
    result = connection.execute(statement, dict(params))
    return [tuple(row) for row in result] if result.returns_rows else []


@functools.cache
def _pipelines() -> bool:
    """psycopg's pipeline mode needs libpq 14 or later (psycopg-binary bundles a newer one)."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


# (statement, its parameters' names) -> compiled, for run_in_turn: as the engine compiles a
# statement for the names it is given (an INSERT names only those columns).
_DRIVER_SQL: dict[tuple[Executable, tuple[str, ...]], Any] = {}


def _for_driver(
    dialect: Dialect, statement: Executable, sets: list[Mapping[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """The statement's SQL and each set of parameters as the engine would hand them to the
    driver: its bind processors applied (an enum's value, say) and its Python-side defaults
    filled in (e.g. updated_at's onupdate)."""
    names = tuple(sorted(sets[0]))
    compiled = _DRIVER_SQL.get((statement, names))
    if compiled is None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
        _DRIVER_SQL[(statement, names)] = compiled
    processors = compiled._bind_processors
    out = []
    for params in sets:
        values = compiled.construct_params(params)
        for column in compiled.insert_prefetch:
            values[column.key] = _default_value(column.default)
        for column in compiled.update_prefetch:
            values[column.key] = _default_value(column.onupdate)
        out.append({k: processors[k](v) if k in processors else v for k, v in values.items()})
    return compiled.string, out


def _default_value(default: Any) -> Any:
    return default.arg if default.is_scalar else default.arg(None)
