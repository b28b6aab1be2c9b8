"""The search index in the database, one backend per dialect, same documents and same ranks.

`search_documents` answers any query, with every alternative of every term:
  SQLite: an FTS5 virtual table, one column per document field, holding the pre-tokenised
  fields (unicode61 splits on the spaces; ideograph words stay whole, so 荔枝 is one token and
  2-character queries work, which the trigram tokenizer cannot do).
  PostgreSQL: a table with one tsvector of field-tagged lexemes ('n:荔枝', 'p:lizhi', 'i:lz' …)
  under a GIN index, built from the same tokens without any text parser.
Ranking those matches costs a little per matching product, which adds up for a one-word query
that matches a tenth of the catalog. So `search_postings` also keeps, for the exact tokens of
the strong fields, (token, rank, product_id) in a B-tree: the best products for 荔枝 are the
first rows of an index range, whatever the catalog's size.
`search_words` (Chinese words with their pinyin, to highlight pinyin matches) and `search_fuzzy`
(symmetric-delete keys of indexed pinyin, for typo correction) complete it.

All are made by the migration `search index`; they are no models (FTS5 has no model
equivalent), so the drift check leaves tables named search_* out.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY, TSVECTOR
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain import Category, Division, Product

from .text import (
    BODY,
    CHARS,
    FIELDS,
    INITIALS,
    NAME,
    PARTS,
    PINYIN,
    PLACES,
    RANK_SCALE,
    SYLLABLES,
    Cond,
    Document,
    Term,
    build_document,
    deletion_keys,
)

TABLE = "search_documents"
MAX_FUZZY_PINYIN = 24  # longer pinyin is a whole name: no typo correction for it
CHUNK = 500

fts_documents = Table(
    TABLE,
    MetaData(),
    Column("rowid", Integer, primary_key=True),
    *(Column(f, Text) for f in FIELDS),
    Column("name_len", Integer),
    Column("posted", Text),
)
pg_documents = Table(
    TABLE,
    MetaData(),
    Column("product_id", Integer, primary_key=True),
    Column("name_len", SmallInteger, nullable=False),
    Column("doc", TSVECTOR, nullable=False),
    Column("posted", Text, nullable=False),
)
_metadata = MetaData()
search_postings = Table(
    "search_postings",
    _metadata,
    Column("token", String(64), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("product_id", Integer, primary_key=True),
)
search_words = Table(
    "search_words",
    _metadata,
    Column("word", String(64), primary_key=True),
    Column("pinyin", String(128), primary_key=True),
    Column("initials", String(64), nullable=False),
)
search_fuzzy = Table(
    "search_fuzzy",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("pinyin", String(64), primary_key=True),
)


class Backend(Protocol):
    @property
    def id_col(self) -> ColumnElement[Any]: ...

    @property
    def name_len(self) -> ColumnElement[Any]: ...

    @property
    def posted_col(self) -> ColumnElement[Any]: ...

    def match(self, terms: Sequence[Term]) -> ColumnElement[bool]: ...

    def contains(self, cond: Cond) -> ColumnElement[bool]: ...

    def write(self, session: Session, docs: Sequence[tuple[int, Document]], *, replace: bool) -> None: ...

    def write_postings(self, session: Session, rows: list[dict[str, Any]]) -> None: ...

    def remove(self, session: Session, product_ids: Sequence[int]) -> None: ...

    def clear(self, session: Session) -> None: ...

    def optimize(self, session: Session) -> None: ...


def _posted_text(doc: Document) -> str:
    return " ".join(f"{token}/{rank}" for token, rank in doc.postings())


def _boolean_query(terms: Sequence[Term], render: Callable[[Cond], str], and_: str, or_: str) -> str:
    """Every term, each by any of its alternatives, each alternative all of its conditions,
    in the backend's own query syntax (FTS5 MATCH, PostgreSQL tsquery)."""
    groups = []
    for term in terms:
        alts = [f" {and_} ".join(render(c) for c in alt.conds) for alt in term.alts]
        groups.append("(" + f" {or_} ".join(f"({a})" for a in alts) + ")")
    return f" {and_} ".join(groups)


class SQLiteBackend:
    id_col = fts_documents.c.rowid
    name_len = fts_documents.c.name_len
    posted_col = fts_documents.c.posted

    @staticmethod
    def _cond(cond: Cond) -> str:
        return f'{cond.field} : "{cond.token}"' + (" *" if cond.prefix else "")

    def fts_query(self, terms: Sequence[Term]) -> str:
        """FTS5 query: every term, each by any of its alternatives (column filters per field)."""
        return _boolean_query(terms, self._cond, "AND", "OR")

    def match(self, terms: Sequence[Term]) -> ColumnElement[bool]:
        return literal_column(TABLE).op("MATCH", is_comparison=True)(literal(self.fts_query(terms)))

    def contains(self, cond: Cond) -> ColumnElement[bool]:
        # The stored field is " tok tok … ": a space on both sides of every token.
        needle = f" {cond.token}" if cond.prefix else f" {cond.token} "
        return func.instr(fts_documents.c[cond.field], needle) > 0

    def write(self, session: Session, docs: Sequence[tuple[int, Document]], *, replace: bool) -> None:
        if replace:
            self.remove(session, [pid for pid, _ in docs])
        rows = [
            {
                "rowid": pid,
                **{f: doc.text(f) for f in FIELDS},
                "name_len": doc.name_len,
                "posted": _posted_text(doc),
            }
            for pid, doc in docs
        ]
        if rows:
            session.execute(insert(fts_documents), rows)

    def write_postings(self, session: Session, rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(sqlite_insert(search_postings).on_conflict_do_nothing(), rows)

    def remove(self, session: Session, product_ids: Sequence[int]) -> None:
        session.execute(delete(fts_documents).where(fts_documents.c.rowid.in_(product_ids)))

    def clear(self, session: Session) -> None:
        session.execute(delete(fts_documents))

    def optimize(self, session: Session) -> None:
        # Merge the segments a bulk load leaves behind into one b-tree per index.
        session.execute(text("INSERT INTO search_documents(search_documents) VALUES ('optimize')"))
        session.execute(text("ANALYZE search_postings"))


_PG_TAGS = {
    NAME: "n",
    PARTS: "w",
    PINYIN: "p",
    INITIALS: "i",
    SYLLABLES: "s",
    CHARS: "c",
    PLACES: "l",
    BODY: "b",
}


class PostgresBackend:
    id_col = pg_documents.c.product_id
    name_len = pg_documents.c.name_len
    posted_col = pg_documents.c.posted

    @staticmethod
    def _lexeme(cond: Cond) -> str:
        # Tokens are ideographs or [a-z0-9] only (text._RUN_RE): nothing to escape.
        return f"'{_PG_TAGS[cond.field]}:{cond.token}'" + (":*" if cond.prefix else "")

    def tsquery(self, terms: Sequence[Term]) -> str:
        return _boolean_query(terms, self._lexeme, "&", "|")

    @staticmethod
    def tsvector(doc: Document) -> str:
        return " ".join(f"'{_PG_TAGS[f]}:{token}'" for f in FIELDS for token in doc.fields[f])

    def match(self, terms: Sequence[Term]) -> ColumnElement[bool]:
        return pg_documents.c.doc.op("@@", is_comparison=True)(cast(literal(self.tsquery(terms)), TSQUERY))

    def contains(self, cond: Cond) -> ColumnElement[bool]:
        return pg_documents.c.doc.op("@@", is_comparison=True)(cast(literal(self._lexeme(cond)), TSQUERY))

    def write(self, session: Session, docs: Sequence[tuple[int, Document]], *, replace: bool) -> None:
        if not docs:
            return
        rows = [
            {"pid": pid, "len": doc.name_len, "doc": self.tsvector(doc), "posted": _posted_text(doc)}
            for pid, doc in docs
        ]
        if not replace and len(rows) > CHUNK:
            self._copy(session, TABLE, ("product_id", "name_len", "doc", "posted"), rows)
            return
        stmt = pg_insert(pg_documents).values(
            product_id=bindparam("pid"),
            name_len=bindparam("len"),
            doc=cast(bindparam("doc"), TSVECTOR),
            posted=bindparam("posted"),
        )
        if replace:
            stmt = stmt.on_conflict_do_update(
                index_elements=[pg_documents.c.product_id],
                set_={
                    "name_len": stmt.excluded.name_len,
                    "doc": stmt.excluded.doc,
                    "posted": stmt.excluded.posted,
                },
            )
        session.execute(stmt, rows)

    def write_postings(self, session: Session, rows: list[dict[str, Any]]) -> None:
        if len(rows) > CHUNK:
            self._copy(session, "search_postings", ("token", "rank", "product_id"), rows)
        elif rows:
            # Two transactions reindexing one product both insert its postings: one wins.
            session.execute(pg_insert(search_postings).on_conflict_do_nothing(), rows)

    @staticmethod
    def _copy(session: Session, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """COPY, for a rebuild: an order of magnitude faster than INSERT for a whole catalog."""
        raw = session.connection().connection.driver_connection
        assert raw is not None
        keys = list(rows[0])
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[k] for k in keys])

    def remove(self, session: Session, product_ids: Sequence[int]) -> None:
        session.execute(delete(pg_documents).where(pg_documents.c.product_id.in_(product_ids)))

    def clear(self, session: Session) -> None:
        session.execute(delete(pg_documents))

    def optimize(self, session: Session) -> None:
        # Move the GIN pending list into the index proper, and give the planner fresh statistics.
        session.execute(text("SELECT gin_clean_pending_list('ix_search_documents_doc'::regclass)"))
        session.execute(text("ANALYZE search_documents"))
        session.execute(text("ANALYZE search_postings"))


def backend(session: Session) -> Backend:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return SQLiteBackend()
    if name == "postgresql":
        return PostgresBackend()
    raise NotImplementedError(f"search has no backend for {name}")


# --- reading ----------------------------------------------------------------------------


def ranked_select(session: Session, terms: Sequence[Term]) -> Select[Any]:
    """(product_id, rank) of the documents matching every term, by every alternative.

    A term scores its best alternative (weights in services.search.text); rank = the sum ×
    RANK_SCALE minus the name length, so at equal score the shorter name, with fewer extra
    words, wins. Integer and deterministic: a keyset pagination key with the product id.
    """
    db = backend(session)
    scores = [
        case(*((and_(*(db.contains(c) for c in alt.conds)), alt.weight) for alt in term.alts), else_=0)
        for term in terms
    ]
    rank = functools.reduce(operator.add, scores) * RANK_SCALE - db.name_len
    return select(db.id_col.label("product_id"), rank.label("rank")).where(db.match(terms))


def posted_select(token: str) -> Select[Any]:
    """(product_id, rank) of the products with `token` as an exact word, in index order.

    The same ranks as ranked_select gives their exact matches, for a one-word query.
    """
    return select(search_postings.c.product_id, search_postings.c.rank).where(
        search_postings.c.token == token
    )


def posted_completions(
    session: Session, prefix: str, enough: int, tokens: int = 5, per_token: int = 50
) -> Select[Any] | None:
    """For suggestions: the best products of the commonest exact words starting with `prefix`.

    Counting the words of a prefix reads an index range (no documents); the products then come
    off the front of a few postings. None when the prefix has fewer than `enough` postings: then
    every alternative is worth its cost.
    """
    p = search_postings.c
    in_range = and_(p.token >= prefix, p.token < prefix + "\U0010ffff")  # byte order: C collation
    n = func.count().label("n")
    common = session.execute(
        select(p.token, n).where(in_range).group_by(p.token).order_by(n.desc(), p.token).limit(tokens)
    ).all()
    if sum(count for _, count in common) < enough:
        return None
    branches = [
        select(p.product_id, p.rank)
        .where(p.token == token)
        .order_by(p.rank.desc(), p.product_id.desc())
        # a subquery each: SQLite takes no ORDER BY/LIMIT inside a UNION member
        .limit(per_token)
        .subquery()
        for token, _ in common
    ]
    return select(*union_all(*(select(b.c.product_id, b.c.rank) for b in branches)).subquery().c)


def posted_count(session: Session, token: str, cap: int) -> int:
    """How many products have `token` as an exact word, counting no further than `cap`."""
    sub = select(search_postings.c.rank).where(search_postings.c.token == token).limit(cap).subquery()
    return session.scalar(select(func.count()).select_from(sub)) or 0


MATERIALIZE_LIMIT = 5000


def matching(session: Session, terms: Sequence[Term]) -> Select[Any] | None:
    """ranked_select(terms) if anything matches, else None; on PostgreSQL, resolved to its rows.

    PostgreSQL cannot estimate how many documents an AND of ORs of lexemes matches (增城 and
    荔枝 are correlated) and, expecting a thousand rows for a hundred, joins the caller's
    products by scanning them all. So up to MATERIALIZE_LIMIT matches are read here, once,
    and handed on as an array the planner counts exactly.
    """
    ranked = ranked_select(session, terms)
    if session.get_bind().dialect.name != "postgresql":
        return ranked if any_match(session, terms) else None
    # A materialized CTE is planned for all its rows (through the GIN index when few match,
    # where a bare LIMIT tempts the planner into a table scan), yet read only as far as needed.
    cte = ranked.cte("found").prefix_with("MATERIALIZED")
    rows = session.execute(select(cte.c.product_id, cte.c.rank).limit(MATERIALIZE_LIMIT + 1)).all()
    if not rows:
        return None
    if len(rows) > MATERIALIZE_LIMIT:
        return ranked
    given = (
        func.unnest(
            cast(literal([r.product_id for r in rows]), ARRAY(Integer)),
            cast(literal([r.rank for r in rows]), ARRAY(Integer)),
        )
        .table_valued(column("product_id", Integer), column("rank", Integer))
        .render_derived("given")
    )
    return select(given.c.product_id, given.c.rank)


def any_match(session: Session, terms: Sequence[Term]) -> bool:
    db = backend(session)
    found = select(db.id_col.label("id")).where(db.match(terms))
    if session.get_bind().dialect.name == "postgresql":
        cte = found.cte("found").prefix_with("MATERIALIZED")  # as in matching()
        return session.execute(select(cte.c.id).limit(1)).first() is not None
    return session.execute(found.limit(1)).first() is not None


# --- writing documents ------------------------------------------------------------------


def _chain(code: str | None) -> list[str]:
    """City, county, town and village codes of a division code (the province says nothing)."""
    return [code[:n] for n in (4, 6, 9, 12) if code and len(code) >= n]


def _context_names(session: Session, rows: Sequence[Any]) -> list[tuple[list[str], list[str]]]:
    """Per product: category names, then city, county and town names; and the village's name."""
    # Categories are a short list (a few dozen): read them all.
    categories: dict[int, tuple[str, int | None]] = {
        cid: (name, parent)
        for cid, name, parent in session.execute(select(Category.id, Category.name, Category.parent_id))
    }
    codes = sorted({c for r in rows for c in (*_chain(r.origin_code), *_chain(r.county_code))})
    divisions: dict[str, str] = {}
    for i in range(0, len(codes), 1000):
        query = select(Division.code, Division.name).where(Division.code.in_(codes[i : i + 1000]))
        divisions.update((code, name) for code, name in session.execute(query))
    result = []
    for r in rows:
        names: list[str] = []
        cid: int | None = r.category_id
        while cid is not None and cid in categories and len(names) < 3:
            name, cid = categories[cid]
            names.append(name)
        chain = [c for c in dict.fromkeys((*_chain(r.county_code), *_chain(r.origin_code))) if c in divisions]
        names.extend(divisions[c] for c in chain if len(c) < 12)
        result.append((names, [divisions[c] for c in chain if len(c) == 12]))
    return result


def _insert_ignoring_duplicates(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for i in range(0, len(rows), 5000):
        session.execute(make(table).on_conflict_do_nothing(), rows[i : i + 5000])


def store_vocabulary(
    session: Session, entries: Iterable[tuple[str, str, str]], *, check: bool = True
) -> None:
    """Add (word, pinyin, initials) entries and the typo keys of their pinyin; known ones are skipped."""
    fresh = {(w, p, i) for w, p, i in entries if len(w) <= 64 and len(p) <= 128 and len(i) <= 64}
    if check and fresh:
        known: set[tuple[str, str]] = set()
        pairs = sorted({(w, p) for w, p, _ in fresh})
        for i in range(0, len(pairs), CHUNK):
            known.update(
                (w, p)
                for w, p in session.execute(
                    select(search_words.c.word, search_words.c.pinyin).where(
                        tuple_(search_words.c.word, search_words.c.pinyin).in_(pairs[i : i + CHUNK])
                    )
                )
            )
        fresh = {e for e in fresh if (e[0], e[1]) not in known}
    if not fresh:
        return
    _insert_ignoring_duplicates(
        session, search_words, [{"word": w, "pinyin": p, "initials": i} for w, p, i in sorted(fresh)]
    )
    keys = {
        (key, p)
        for w, p, _ in fresh
        if len(w) >= 2 and len(p) <= MAX_FUZZY_PINYIN
        for key in deletion_keys(p)
    }
    _insert_ignoring_duplicates(session, search_fuzzy, [{"key": k, "pinyin": p} for k, p in sorted(keys)])


def _parse_posted(product_id: int, posted: str | None) -> list[tuple[str, int, int]]:
    result = []
    for item in (posted or "").split():
        token, _, rank = item.rpartition("/")
        result.append((token, int(rank), product_id))
    return result


def _remove_postings(session: Session, product_ids: Sequence[int]) -> None:
    """Delete the postings a product's document lists: an exact key each, no scan by product."""
    db = backend(session)
    old: list[tuple[str, int, int]] = []
    for i in range(0, len(product_ids), CHUNK):
        query = select(db.id_col, db.posted_col).where(db.id_col.in_(product_ids[i : i + CHUNK]))
        for pid, posted in session.execute(query):
            old.extend(_parse_posted(pid, posted))
    p = search_postings.c
    for i in range(0, len(old), CHUNK):
        session.execute(
            delete(search_postings).where(tuple_(p.token, p.rank, p.product_id).in_(old[i : i + CHUNK]))
        )


def index_rows(
    session: Session,
    rows: Sequence[Any],
    *,
    replace: bool = True,
    seen: set[tuple[str, str, str]] | None = None,
) -> None:
    """Index products given as rows of id, name, description, category_id, origin_code, county_code.

    `replace=False` when the index holds none of them (a rebuild); `seen` collects the vocabulary
    already written by earlier batches of the same rebuild, which then skips the lookup.
    """
    contexts = _context_names(session, rows)
    docs = [
        (r.id, build_document(r.name, r.description or "", places, villages))
        for r, (places, villages) in zip(rows, contexts, strict=True)
    ]
    db = backend(session)
    if replace:
        _remove_postings(session, [pid for pid, _ in docs])
    db.write(session, docs, replace=replace)
    db.write_postings(
        session,
        [{"token": t, "rank": rank, "product_id": pid} for pid, doc in docs for t, rank in doc.postings()],
    )
    entries = {e for _, doc in docs for e in doc.words}
    if seen is None:
        store_vocabulary(session, entries)
    else:
        store_vocabulary(session, entries - seen, check=False)
        seen |= entries


def remove(session: Session, product_ids: Sequence[int]) -> None:
    _remove_postings(session, product_ids)
    backend(session).remove(session, product_ids)


def product_rows(session: Session, after_id: int = 0, limit: int = 2000) -> Sequence[Any]:
    return session.execute(
        select(
            Product.id,
            Product.name,
            Product.description,
            Product.category_id,
            Product.origin_code,
            Product.county_code,
        )
        .where(Product.id > after_id)
        .order_by(Product.id)
        .limit(limit)
    ).all()


def clear(session: Session) -> None:
    backend(session).clear(session)
    for table in (search_postings, search_words, search_fuzzy):
        session.execute(delete(table))
