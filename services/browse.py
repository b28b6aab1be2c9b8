"""Browsing the catalog as a buyer: category tree, filters, sorted keyset pages of product cards,
the product page and the seller page. Queries live here; views and the API only shape them.

Only products buyers may see are listed: active ones, and sold-out ones (shown as such).
Pages are cut with an opaque keyset cursor (the last row's sort key and id, base64 JSON),
never OFFSET: the next page costs the same on page 1 and page 500, and a product added while a
buyer reads does not shift what they see next.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    TypeDecorator,
    and_,
    bindparam,
    case,
    exists,
    func,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from domain import (
    MAX_PRICE_FEN,
    CampaignItem,
    CampaignState,
    Category,
    CategoryFlow,
    Certification,
    CertificationKind,
    CountyServiceCenter,
    Division,
    Node,
    Product,
    ProductPhoto,
    ProductStatus,
    SellerProfile,
    SignupStatus,
    StorageClass,
    Unit,
    clock,
)
from domain.base import UTCDateTime
from services import catalog, search
from services.campaigns import manage as campaigns
from services.errors import NotFound, ValidationError
from services.i18n import _
from services.validation import id_or_none

VISIBLE_STATUSES = (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT)
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
COUNTY_RE = re.compile(r"^\d{6}$", re.ASCII)
SOLD_OUT_PENALTY = 1_000_000
_UTC = UTCDateTime()


class Sort(enum.StrEnum):
    NEW = "new"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    SALES = "sales"
    RELEVANCE = "relevance"  # only with a search query


# The sort key column and whether the order is descending; id breaks ties in the same direction,
# which is what makes (key, id) a total order for the keyset.
_SORT_KEYS: dict[Sort, tuple[Any, bool]] = {
    Sort.NEW: (Product.published_at, True),
    Sort.PRICE_ASC: (Product.price_fen, False),
    Sort.PRICE_DESC: (Product.price_fen, True),
    Sort.SALES: (Product.sales_count, True),
}


def _field_error(name: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={name: [message]})


# --- what the pages show ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """What a card needs of a photo (the same attribute names as ProductPhoto)."""

    key: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ProductCard:
    """One product in a list: everything a card shows, loaded in the list's one query."""

    id: int
    name: str
    price_fen: int
    unit: Unit
    net_weight_g: int
    status: ProductStatus
    storage_class: StorageClass
    presale: bool
    ships_from: date | None
    seller_id: int
    shop_name: str | None
    village_name: str | None
    county_code: str
    county_name: str | None
    has_gi: bool
    photo: PhotoRef | None
    category_id: int  # what a campaign's scope may name (the shelf price: services/campaigns/pricing.py)

    @property
    def sold_out(self) -> bool:
        return self.status == ProductStatus.SOLD_OUT


@dataclass(frozen=True)
class ProductPage:
    items: list[ProductCard]
    next_cursor: str | None
    corrected: str | None = None
    terms: tuple[str, ...] = ()
    sort: Sort = Sort.NEW


@dataclass(frozen=True)
class CategoryBranch:
    category: Category
    children: list[Category] = field(default_factory=list)

    @property
    def ids(self) -> tuple[int, ...]:
        """The category and its children: what a page of this category lists."""
        return (self.category.id, *(c.id for c in self.children))


@dataclass(frozen=True, slots=True)
class CountyOption:
    code: str
    name: str
    city_name: str
    count: int


@dataclass(frozen=True, slots=True)
class CampaignOption:
    """A campaign a list may be narrowed to (the 活动 choice of the filter forms)."""

    id: int
    name: str
    running: bool


@dataclass(frozen=True)
class FilterOptions:
    counties: list[CountyOption]
    campaigns: list[CampaignOption] = field(default_factory=list)
    certifications: tuple[CertificationKind, ...] = tuple(CertificationKind)
    storage_classes: tuple[StorageClass, ...] = tuple(StorageClass)


@dataclass(frozen=True)
class ProductDetail:
    product: Product
    seller: SellerProfile | None
    origin_path: list[Division]  # city → county → town → village
    county_center: Node | None
    village_point: Node | None


@dataclass(frozen=True)
class SellerDetail:
    profile: SellerProfile
    path: list[Division]
    products: ProductPage


# --- categories ---------------------------------------------------------------------------------


def category_tree(session: Session) -> list[CategoryBranch]:
    """Top-level categories in display order, each with its children."""
    return tree_of(catalog.categories(session))


def tree_of(rows: list[Category]) -> list[CategoryBranch]:
    """category_tree from the rows of catalog.categories (read once for a page's needs)."""
    branches = {c.id: CategoryBranch(c) for c in rows if c.parent_id is None}
    for c in rows:
        if c.parent_id is not None and c.parent_id in branches:
            branches[c.parent_id].children.append(c)
    return list(branches.values())


def get_category(session: Session, slug: str) -> CategoryBranch:
    """A category by its slug, with its children (NotFound for an unknown slug)."""
    category = None
    if catalog.is_slug(slug):
        category = session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise NotFound(_("This category does not exist."))
    children = list(
        session.scalars(select(Category).where(Category.parent_id == category.id).order_by(Category.position))
    )
    return CategoryBranch(category, children)


def branch_in(rows: list[Category], slug: str) -> CategoryBranch:
    """get_category from the rows of catalog.categories, without another query."""
    category = next((c for c in rows if c.slug == slug), None) if catalog.is_slug(slug) else None
    if category is None:
        raise NotFound(_("This category does not exist."))
    children = sorted((c for c in rows if c.parent_id == category.id), key=lambda c: (c.position, c.id))
    return CategoryBranch(category, children)


# --- the list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filters:
    category_ids: tuple[int, ...] | None
    county_code: str | None
    certification: CertificationKind | None
    storage_class: StorageClass | None
    price_min_fen: int | None
    price_max_fen: int | None
    seller_id: int | None
    flow: CategoryFlow | None = None
    campaign_id: int | None = None

    # The filters' columns, each compared with a bound parameter of its own name: a page's
    # statement depends only on which filters are set (its shape) and is built once per shape.
    _PARAMS = (
        "category_ids",
        "county_code",
        "storage_class",
        "price_min_fen",
        "price_max_fen",
        "seller_id",
        "flow",
        "certification",
        "campaign_id",
    )

    @property
    def shape(self) -> tuple[str, ...]:
        return tuple(name for name in self._PARAMS if getattr(self, name) is not None)

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.shape}

    def conditions(self) -> list[ColumnElement[bool]]:
        return _conditions(self.shape)


def _conditions(shape: tuple[str, ...]) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if "category_ids" in shape:
        conds.append(Product.category_id.in_(bindparam("category_ids", expanding=True)))
    if "county_code" in shape:
        conds.append(Product.county_code == bindparam("county_code"))
    if "storage_class" in shape:
        conds.append(Product.storage_class == bindparam("storage_class"))
    if "price_min_fen" in shape:
        conds.append(Product.price_fen >= bindparam("price_min_fen"))
    if "price_max_fen" in shape:
        conds.append(Product.price_fen <= bindparam("price_max_fen"))
    if "seller_id" in shape:
        conds.append(Product.seller_id == bindparam("seller_id"))
    if "flow" in shape:
        conds.append(Product.category_id.in_(select(Category.id).where(Category.flow == bindparam("flow"))))
    if "certification" in shape:
        conds.append(
            exists().where(
                Certification.product_id == Product.id, Certification.kind == bindparam("certification")
            )
        )
    if "campaign_id" in shape:
        conds.append(in_campaign(bindparam("campaign_id")))
    return conds


def in_campaign(campaign_id: Any) -> ColumnElement[bool]:
    """The product has an approved sign-up in the campaign (pending, rejected and withdrawn ones
    do not count). `campaign_id` is a value or a bound parameter."""
    return exists().where(
        CampaignItem.product_id == Product.id,
        CampaignItem.campaign_id == campaign_id,
        CampaignItem.status == SignupStatus.APPROVED,
    )


def check_campaign(session: Session, campaign_id: Any) -> int | None:
    """The id of the campaign a list is narrowed to (None for none): a campaign buyers may see
    (manage.public_campaign: published, not cancelled; scheduled and ended ones too), else a
    field error on `campaign_id`."""
    if campaign_id is None or campaign_id == "":
        return None
    try:
        return campaigns.public_campaign(session, campaign_id).id
    except NotFound:
        raise _field_error("campaign_id", _("Choose a campaign from the list.")) from None


def campaign_options(
    session: Session,
    *,
    selected: Any = None,
    now: datetime | None = None,
    running: Collection[int] | None = None,
) -> list[CampaignOption]:
    """The campaigns worth offering in a filter: those running now (of manage.public_campaigns,
    by start), and the one already chosen (`selected`) when buyers may see it but it is not running
    (it ended, or has not started), so the form shows what narrows the list and can clear it.
    `running`: the ids of the campaigns running at `now` if the caller knows them (none: no query)."""
    now = now or clock.now()
    options = (
        [
            CampaignOption(c.id, c.name, True)
            for c in campaigns.public_campaigns(session, now)
            if c.state(now) == CampaignState.RUNNING
        ]
        if running is None or running
        else []
    )
    chosen = id_or_none(selected) if selected not in (None, "") else None
    if chosen is not None and all(o.id != chosen for o in options):
        try:
            campaign = campaigns.public_campaign(session, chosen)
        except NotFound:
            return options
        options.append(CampaignOption(campaign.id, campaign.name, False))
    return options


def _price(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE_FEN:
        raise _field_error(name, _("Enter a price between ¥0 and ¥100,000."))
    return value


def _check_filters(
    session: Session,
    *,
    category_slug: str | None,
    category_ids: tuple[int, ...] | None = None,
    county_code: str | None,
    certification: str | CertificationKind | None,
    storage_class: str | StorageClass | None,
    price_min_fen: int | None,
    price_max_fen: int | None,
    seller_id: int | None,
    flow: str | CategoryFlow | None = None,
    campaign_id: Any = None,
) -> _Filters:
    errors: dict[str, list[Any]] = {}
    flow_value: CategoryFlow | None = None
    if flow:
        try:
            flow_value = CategoryFlow(flow)
        except ValueError:
            errors["flow"] = [_("Choose from the list.")]
    if category_slug and category_ids is None:
        category = (
            session.scalar(select(Category.id).where(Category.slug == category_slug))
            if catalog.is_slug(category_slug)
            else None
        )
        if category is None:
            errors["category"] = [_("Choose a category from the list.")]
        else:
            children = session.scalars(select(Category.id).where(Category.parent_id == category))
            category_ids = (category, *children)
    if county_code and not (isinstance(county_code, str) and COUNTY_RE.match(county_code)):
        errors["county"] = [_("Choose a county from the list.")]
    cert: CertificationKind | None = None
    if certification:
        try:
            cert = CertificationKind(certification)
        except ValueError:
            errors["certification"] = [_("Choose a certification from the list.")]
    storage: StorageClass | None = None
    if storage_class:
        try:
            storage = StorageClass(storage_class)
        except ValueError:
            errors["storage"] = [_("Choose a storage class from the list.")]
    low = high = None
    try:
        low = _price("price_min", price_min_fen)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    try:
        high = _price("price_max", price_max_fen)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    if low is not None and high is not None and low > high:
        errors["price_max"] = [_("The highest price is below the lowest.")]
    if seller_id is not None and (
        isinstance(seller_id, bool) or not isinstance(seller_id, int) or not 0 < seller_id < 2**31
    ):
        errors["seller"] = [_("Unknown seller.")]
    campaign: int | None = None
    try:
        campaign = check_campaign(session, campaign_id)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return _Filters(
        category_ids=category_ids,
        county_code=county_code or None,
        certification=cert,
        storage_class=storage,
        price_min_fen=low,
        price_max_fen=high,
        seller_id=seller_id,
        flow=flow_value,
        campaign_id=campaign,
    )


def search_hits(
    session: Session, q: str, limit: int = 20, *, campaign_id: Any = None
) -> search.SearchResults:
    """The search API's ranked hits (search.search), narrowed to the products of a campaign
    (check_campaign: a field error on `campaign_id` for one buyers may not see)."""
    campaign = check_campaign(session, campaign_id)
    return search.search(session, q, limit, where=(in_campaign(campaign),) if campaign is not None else ())


class InvalidCursor(ValidationError):
    """A cursor this code did not make (edited, truncated, or for another sort)."""


def encode_cursor(sort: Sort, key: Any, product_id: int) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    raw = json.dumps([sort.value, key, product_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    """The (sort key, id) a cursor stands for; InvalidCursor for anything else."""

    def bad() -> InvalidCursor:
        msg = _("This page link is no longer valid. Start again from the first page.")
        return InvalidCursor(msg, field_errors={"after": [msg]})

    if not isinstance(cursor, str) or len(cursor) > 200:
        raise bad()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad() from None
    if not (isinstance(value, list) and len(value) == 3 and value[0] == sort.value):
        raise bad()
    _sort, key, product_id = value
    if isinstance(product_id, bool) or not isinstance(product_id, int) or not 0 < product_id < 2**31:
        raise bad()
    if sort == Sort.NEW:
        try:
            key = datetime.fromisoformat(key) if isinstance(key, str) else None
        except ValueError:
            key = None
        if key is None or key.tzinfo is None:
            raise bad()
    elif sort == Sort.RELEVANCE:
        if isinstance(key, bool) or not isinstance(key, int | float) or not math.isfinite(key):
            raise bad()
    elif isinstance(key, bool) or not isinstance(key, int) or abs(key) >= 2**63:
        raise bad()
    return key, product_id


def _parse_sort(sort: str | Sort | None, has_query: bool) -> Sort:
    if sort is None or sort == "":
        return Sort.RELEVANCE if has_query else Sort.NEW
    try:
        parsed = Sort(sort)
    except ValueError:
        raise _field_error("sort", _("Choose an order from the list.")) from None
    if parsed == Sort.RELEVANCE and not has_query:
        return Sort.NEW  # relevance needs a query; without one, newest first
    return parsed


def _parse_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _field_error("limit", _("Ask for between 1 and %(max)d products.", max=MAX_LIMIT))
    return limit


def find_products(
    session: Session,
    *,
    q: str | None = None,
    category_slug: str | None = None,
    category_ids: tuple[int, ...] | None = None,
    county_code: str | None = None,
    certification: str | CertificationKind | None = None,
    storage_class: str | StorageClass | None = None,
    price_min_fen: int | None = None,
    price_max_fen: int | None = None,
    seller_id: int | None = None,
    flow: str | CategoryFlow | None = None,
    campaign_id: Any = None,
    sort: str | Sort | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> ProductPage:
    """One page of product cards buyers may see, filtered and sorted, after the cursor `after`.

    With `q`, only products matching the search, by relevance unless another sort is asked;
    `flow` keeps farm produce or goods for the villages only; `campaign_id` the products with an
    approved sign-up in that campaign (one buyers may see, see check_campaign). `category_ids` (a
    CategoryBranch's ids, when the page has read the categories already) stands for the
    category_slug's category and children.
    Raises ValidationError for bad filters and InvalidCursor (a ValidationError) for a bad cursor.
    """
    filters = _check_filters(
        session,
        category_slug=category_slug,
        category_ids=category_ids,
        county_code=county_code,
        certification=certification,
        storage_class=storage_class,
        price_min_fen=price_min_fen,
        price_max_fen=price_max_fen,
        seller_id=seller_id,
        flow=flow,
        campaign_id=campaign_id,
    )
    limit = _parse_limit(limit)
    query = (q or "").strip()
    sort_by = _parse_sort(sort, bool(query))
    keyset = decode_cursor(after, sort_by) if after else None

    match = search.matches(session, query) if query else None
    if query and match is None:
        return ProductPage([], None, None, (), sort_by)

    params = filters.params()
    if keyset is not None:
        params.update(after_key=keyset[0], after_id=keyset[1])
    if match is not None:
        ranked = match.subquery
        if sort_by == Sort.RELEVANCE:
            # What can be bought first: a sold-out match goes below every available one (ranks
            # are far below this offset), and the key stays one number for the cursor.
            key_col: Any = ranked.c.rank - case(
                (Product.status == ProductStatus.SOLD_OUT, SOLD_OUT_PENALTY), else_=0
            )
            descending = True
        else:
            key_col, descending = _SORT_KEYS[sort_by]
        stmt = (
            select(Product.id.label("id"), key_col.label("k"))
            .join(ranked, ranked.c.product_id == Product.id)
            .where(Product.status.in_(VISIBLE_STATUSES), *filters.conditions())
        )
        ids = _keyset(stmt, key_col, descending, keyset is not None, limit).subquery("ids")
        cards = _card_select(ids, descending).limit(limit + 1)
    else:
        descending = _SORT_KEYS[sort_by][1]
        cards = _list_statement(sort_by, filters.shape, keyset is not None, limit)
    rows = session.execute(cards, params).all()
    items = [_card(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        key = last.k
        if isinstance(key, datetime):  # the raw value (raw_key): only the cursor needs it as UTC
            key = _UTC.process_result_value(key, None)
        next_cursor = encode_cursor(sort_by, key, last.id)
    return ProductPage(
        items,
        next_cursor,
        corrected=match.corrected if match is not None else None,
        terms=tuple(match.terms) if match is not None else (),
        sort=sort_by,
    )


def _keyset(stmt: Select[Any], key_col: Any, descending: bool, after: bool, limit: int) -> Select[Any]:
    if after:
        # Bound with the column's own type, so a datetime is stored-format UTC on SQLite too.
        bound = tuple_(
            bindparam("after_key", type_=key_col.type), bindparam("after_id", type_=Product.id.type)
        )
        row = tuple_(key_col, Product.id)
        stmt = stmt.where(row < bound if descending else row > bound)
    if key_col is Product.published_at:
        stmt = stmt.where(Product.published_at.is_not(None))
    order = (key_col.desc(), Product.id.desc()) if descending else (key_col.asc(), Product.id.asc())
    return stmt.order_by(*order).limit(limit + 1)


@lru_cache(maxsize=256)
def _list_statement(sort_by: Sort, shape: tuple[str, ...], after: bool, limit: int) -> Select[Any]:
    """The cards of a page without a search, for this sort, set of filters and size: built once
    (building and keying a statement this size costs more than running it). The parameters
    are the filters' (`_Filters.params`) and the cursor's `after_key` and `after_id`."""
    key_col, descending = _SORT_KEYS[sort_by]
    conds = _conditions(shape)
    # One index-ordered range per status (status, key, id), merged: the database reads about
    # `limit` index entries per status instead of sorting every visible product.
    branches = [
        _keyset(
            select(Product.id.label("id"), key_col.label("k")).where(Product.status == status, *conds),
            key_col,
            descending,
            after,
            limit,
        ).subquery(f"b_{status.value}")
        for status in VISIBLE_STATUSES
    ]
    ids = union_all(*(select(b.c.id, b.c.k) for b in branches)).subquery("ids")
    return _card_select(ids, descending, raw_key=True).limit(limit + 1)


_Village = aliased(Division, name="village")
_County = aliased(Division, name="county")
_Photo = aliased(ProductPhoto, name="photo")
_GI = aliased(Certification, name="gi")


def _card_select(ids: Any, descending: bool, raw_key: bool = False) -> Select[Any]:
    """The card columns of the products in `ids`, in the page's order, in one statement.

    `raw_key`: the sort key as the driver gives it, not converted on every row (find_products
    converts the last row's for the cursor)."""
    first_photo = (
        select(ProductPhoto.id)
        .where(ProductPhoto.product_id == Product.id)
        .order_by(ProductPhoto.position, ProductPhoto.id)
        .limit(1)
        .correlate(Product)
        .scalar_subquery()
    )
    order = (ids.c.k.desc(), ids.c.id.desc()) if descending else (ids.c.k.asc(), ids.c.id.asc())
    key_type = ids.c.k.type
    key = type_coerce(ids.c.k, key_type.impl) if raw_key and isinstance(key_type, TypeDecorator) else ids.c.k
    return (
        select(
            ids.c.id,
            key.label("k"),
            Product.name,
            Product.price_fen,
            Product.unit,
            Product.net_weight_g,
            Product.status,
            Product.storage_class,
            Product.presale,
            Product.ships_from,
            Product.seller_id,
            Product.county_code,
            Product.origin_code,
            Product.category_id,
            SellerProfile.shop_name,
            _Village.name.label("village_name"),
            _County.name.label("county_name"),
            _GI.id.is_not(None).label("has_gi"),
            _Photo.key.label("photo_key"),
            _Photo.width.label("photo_width"),
            _Photo.height.label("photo_height"),
        )
        .select_from(ids)
        .join(Product, Product.id == ids.c.id)
        .outerjoin(SellerProfile, SellerProfile.user_id == Product.seller_id)
        .outerjoin(_Village, _Village.code == Product.origin_code)
        .outerjoin(_County, _County.code == Product.county_code)
        .outerjoin(_Photo, _Photo.id == first_photo)
        # at most one row: certifications are unique per product and kind
        .outerjoin(
            _GI, and_(_GI.product_id == Product.id, _GI.kind == CertificationKind.GEOGRAPHICAL_INDICATION)
        )
        .order_by(*order)
    )


@dataclass(frozen=True, slots=True)
class _Named:
    name: str


_SHORT_NAME: Any = Division.short_name.fget  # type: ignore[attr-defined]


def _spoken(name: str | None) -> str | None:
    if name is None:
        return None
    return _SHORT_NAME(_Named(name))  # Division.short_name's rule, without an ORM instance


def _card(row: Any) -> ProductCard:
    # By position (the columns of _card_select, in order): a page has 20 of these.
    (
        product_id,
        _key,
        name,
        price_fen,
        unit,
        net_weight_g,
        status,
        storage_class,
        presale,
        ships_from,
        seller_id,
        county_code,
        origin_code,
        category_id,
        shop_name,
        village_name,
        county_name,
        has_gi,
        photo_key,
        photo_width,
        photo_height,
    ) = row
    return ProductCard(
        product_id,
        name,
        price_fen,
        unit,
        net_weight_g,
        status,
        storage_class,
        presale,
        ships_from,
        seller_id,
        shop_name,
        # Goods come from a county or city: only a town or village is worth naming beside it.
        _spoken(village_name) if len(origin_code) >= 9 else None,
        county_code,
        county_name,
        bool(has_gi),
        PhotoRef(photo_key, photo_width, photo_height) if photo_key else None,
        category_id,
    )


def filter_options(
    session: Session,
    *,
    category_slug: str | None = None,
    category_ids: tuple[int, ...] | None = None,
    campaign_id: Any = None,
    campaigns: list[CampaignOption] | None = None,
    counties: list[CountyOption] | None = None,
) -> FilterOptions:
    """The choices of the filter form: counties that have visible products (in the category,
    named by its slug or, when the page has read the categories already, its branch's ids), and
    the campaigns (campaign_options; `campaign_id` the one chosen); `campaigns` and `counties`
    if the caller has them."""
    if category_slug and category_ids is None:
        category_ids = get_category(session, category_slug).ids
    return FilterOptions(
        county_options(session, category_ids) if counties is None else counties,
        campaign_options(session, selected=campaign_id) if campaigns is None else campaigns,
    )


def county_options(session: Session, category_ids: tuple[int, ...] | None = None) -> list[CountyOption]:
    """Counties with visible products (in these categories), with how many, in code order. They
    change only with what the shop's lists show (services/catalog/freshness.py bumps)."""
    params = {"category_ids": category_ids} if category_ids is not None else {}
    rows = session.execute(_county_counts(category_ids is not None), params).all()
    return [CountyOption(code, name, city_name or "", n) for code, name, city_name, n in rows]


@lru_cache(maxsize=2)
def _county_counts(in_categories: bool) -> Select[Any]:
    """Visible products per county with the county's and its city's names, in one statement."""
    stmt = (
        select(Product.county_code.label("code"), func.count().label("n"))
        .where(Product.status.in_(VISIBLE_STATUSES))
        .group_by(Product.county_code)
    )
    if in_categories:
        stmt = stmt.where(Product.category_id.in_(bindparam("category_ids", expanding=True)))
    counts = stmt.subquery("counts")
    city = aliased(Division)
    return (
        select(Division.code, Division.name, city.name, counts.c.n)
        .join(counts, counts.c.code == Division.code)
        .outerjoin(city, city.code == Division.parent_code)
        .order_by(Division.code)
    )


# --- one product, one seller --------------------------------------------------------------------


def _path(session: Session, code: str) -> list[Division]:
    """City → county → town → village down to `code`, in one query (codes nest by prefix)."""
    prefixes = [code[:n] for n in (4, 6, 9, 12) if len(code) >= n]
    found = {d.code: d for d in session.scalars(select(Division).where(Division.code.in_(prefixes)))}
    return [found[p] for p in prefixes if p in found]


def product_page(session: Session, product_id: int) -> ProductDetail:
    """A product buyers may see, with its origin path, county service center and seller."""
    product = catalog.get_public_product(session, product_id)
    seller = session.get(SellerProfile, product.seller_id)
    center = session.scalar(
        select(CountyServiceCenter)
        .where(CountyServiceCenter.county_code == product.county_code, CountyServiceCenter.active.is_(True))
        .order_by(CountyServiceCenter.id)
        .limit(1)
    )
    point = seller.home_point if seller is not None and seller.home_point is not None else None
    if point is not None and not point.active:
        point = None
    return ProductDetail(
        product=product,
        seller=seller,
        origin_path=_path(session, product.origin_code),
        county_center=center,
        village_point=point,
    )


def seller_page(
    session: Session,
    seller_id: int,
    *,
    sort: str | Sort | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> SellerDetail:
    """A seller's public page: shop, village, and a page of their listings."""
    profile = (
        session.get(SellerProfile, seller_id)
        if isinstance(seller_id, int) and not isinstance(seller_id, bool) and 0 < seller_id < 2**31
        else None
    )
    if profile is None:
        raise NotFound(_("This seller does not exist."))
    products = find_products(session, seller_id=seller_id, sort=sort, after=after, limit=limit)
    return SellerDetail(profile=profile, path=_path(session, profile.division_code), products=products)
