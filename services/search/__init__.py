"""Product search in Chinese characters, full pinyin and initials, on SQLite and PostgreSQL.

荔枝, lizhi and lz all find 增城挂绿荔枝; exact Chinese and full pinyin rank above prefixes,
initials and the description; a pinyin typo (lizji) is corrected when nothing matches.
text: the language work (jieba, pypinyin), pure. store: the index tables. query: searching.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from domain import Product

from . import store
from .query import SearchHit, SearchMatch, SearchResults, matches, search, search_products, suggest
from .text import highlight

__all__ = [
    "SearchHit",
    "SearchMatch",
    "SearchResults",
    "highlight",
    "index_product",
    "matches",
    "rebuild_index",
    "remove_product",
    "search",
    "search_products",
    "suggest",
]


def index_product(session: Session, product: Product) -> None:
    """(Re)build the product's search document, in the caller's transaction (no commit)."""
    if product.id is None:
        session.flush()
    store.index_rows(session, [product])


def remove_product(session: Session, product_id: int) -> None:
    """Drop the product's search document, in the caller's transaction (no commit)."""
    store.remove(session, [product_id])


def rebuild_index(session: Session, batch: int = 2000) -> int:
    """Reindex every product from scratch and commit; returns the number of products indexed."""
    store.clear(session)
    seen: set[tuple[str, str, str]] = set()
    count = last_id = 0
    while rows := store.product_rows(session, last_id, batch):
        store.index_rows(session, rows, replace=False, seen=seen)
        count += len(rows)
        last_id = rows[-1].id
    store.backend(session).optimize(session)
    session.commit()
    return count
