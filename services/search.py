"""Product search in Chinese characters, full pinyin and initials (jieba + pypinyin).

Interface used by services.catalog and services.browse; the search work fills it in.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from marketplace.models import Product


def index_product(session: Session, product: Product) -> None:
    """(Re)build the product's search document, in the caller's transaction."""
    # Filled in by the search work; until then nothing is indexed.
