"""The one DeclarativeBase every model inherits, with naming conventions for constraints, and the
column types the models share (UTC datetimes, money)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Integer, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Money: whole fen in a 64-bit column. PostgreSQL's INTEGER is 32-bit and overflows at
# ¥21,474,836.47 (a line of 999 × ¥100,000 is ¥99,900,000; a ledger account's or a payout batch's
# total grows past that with volume). SQLite's INTEGER already stores 64 bits (and an INTEGER
# column keeps its type affinity), so there the column stays INTEGER and no table is rebuilt.
MONEY_TYPE = BigInteger().with_variant(Integer(), "sqlite")
Money = Annotated[int, mapped_column(MONEY_TYPE)]


def shared_row(target: str) -> ForeignKey:
    """A foreign key from a checkout's new rows to a row that many checkouts reference at once
    (the product, its seller, the delivery's division or pickup point, a campaign and its
    sign-up), checked when the transaction commits rather than at each INSERT (PostgreSQL:
    DEFERRABLE INITIALLY DEFERRED, migration 8d4e5f607182).

    Checked at the INSERT, PostgreSQL takes a KEY SHARE lock on the referenced row and keeps it
    to the end of the transaction; two or more transactions holding one on the same row are
    recorded as a MultiXact, written anew (with every member) for each new locker and for the
    stock's UPDATE of that row. A flash sale's crowd on one product made that quadratic in the
    checkouts in flight, and locked the product against SELECT … FOR UPDATE (a release of
    expired stock) until every one of them ended. Checked at commit, the checkout's own UPDATE
    of the product and of the quota already holds a stronger lock, and the others are taken for
    an instant.

    SQLite has no row locks (a writer holds the whole database) and keeps these foreign keys as
    they were: rebuilding a referenced table there with foreign keys on would cascade-delete its
    children (tests/integration/test_migrations.py allows for that difference)."""
    return ForeignKey(target, deferrable=True, initially="DEFERRED")


def include_object(obj, name, type_, reflected, compare_to):
    """For autogenerate and the drift check: leave out the search index (services.search.store),
    whose tables, FTS5 shadow tables and indexes are made by their migration and have no models."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = getattr(table, "name", None) or (name if type_ == "table" else None)
    return not (table_name or "").startswith("search_")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def str_enum(e: type[enum.Enum], length: int = 32) -> Enum:
    """A string column holding a StrEnum's values (portable: a VARCHAR, not a native enum)."""
    return Enum(e, native_enum=False, length=length, values_callable=lambda x: [m.value for m in x])
