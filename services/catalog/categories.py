"""Categories: the tree for pickers, what a seller mostly lists, and the import with its slug rule."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from domain import Category, CategoryFlow, SellerKind
from services.errors import ValidationError
from services.i18n import _

_ALL = select(Category).order_by(Category.parent_id.is_not(None), Category.position, Category.id)


def categories(session: Session) -> list[Category]:
    """The whole category tree, parents before children, in display order."""
    return list(session.scalars(_ALL))


def category_groups(
    session: Session, flow: CategoryFlow | None = None
) -> list[tuple[Category, list[Category]]]:
    """Top categories with the categories a listing can be in, for a grouped picker.

    With a flow (farm produce for farmers, goods for merchants), that flow's groups come first."""
    tree = categories(session)
    groups = [(top, [c for c in tree if c.parent_id == top.id]) for top in tree if top.parent_id is None]
    groups = [(top, children) for top, children in groups if children]
    if flow is not None:
        groups.sort(key=lambda g: g[0].flow != flow)
    return groups


def flow_of(kind: SellerKind | None) -> CategoryFlow:
    """What a seller mostly lists: farm produce, or (merchants) goods for the villages."""
    return CategoryFlow.GOODS if kind == SellerKind.MERCHANT else CategoryFlow.FARM


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$", re.ASCII)


def is_slug(slug: Any) -> bool:
    """Whether `slug` is a well-formed category slug."""
    return isinstance(slug, str) and SLUG_RE.match(slug) is not None


def import_categories(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add the categories not yet present, matched on slug (parents first); returns how many.

    Rows: slug, name (Chinese), name_en, flow, position, and parent (a slug) for children.
    Existing categories are left as they are, so running it twice adds nothing.
    """
    rows = list(rows)
    existing = dict(session.execute(select(Category.slug, Category.id)).tuples().all())
    added = 0
    for row in sorted(rows, key=lambda r: r.get("parent") is not None):
        slug = row["slug"]
        if not is_slug(slug):
            raise ValidationError(_("Invalid category slug %(slug)s.", slug=slug))
        if slug in existing:
            continue
        parent_slug = row.get("parent")
        if parent_slug is not None and parent_slug not in existing:
            raise ValidationError(_("Unknown parent category %(slug)s.", slug=parent_slug))
        result = session.execute(
            insert(Category).returning(Category.id),
            [
                {
                    "slug": slug,
                    "name": row["name"],
                    "name_en": row["name_en"],
                    "flow": CategoryFlow(row["flow"]),
                    "position": int(row.get("position", 0)),
                    "parent_id": existing[parent_slug] if parent_slug else None,
                }
            ],
        )
        existing[slug] = result.scalar_one()
        added += 1
    session.commit()
    return added
