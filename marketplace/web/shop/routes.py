"""The buyer's pages: category pages with filters and sorting, search results, the product page
and the seller page. Plain GET forms and links throughout: nothing needs JavaScript."""

from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for
from flask_babel import get_locale, gettext, lazy_gettext
from markupsafe import Markup

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.web.forms import show_service_error
from marketplace.web.shop import bp
from marketplace.web.shop.cache import (
    cached,
    campaign_options,
    county_choices,
    end_read_only_transaction,
    render_page,
)
from marketplace.web.shop.cards import card_views, shelf_price
from marketplace.web.shop.forms import SORTS, CampaignForm, FilterForm
from services import browse, catalog
from services import search as product_search
from services.errors import ValidationError
from services.logistics import schedule

bp.teardown_request(end_read_only_transaction)

PAGE_SIZE = 20
SUGGESTIONS = 8
HOME_FARM_PRODUCTS = 8
HOME_GOODS = 4
MAX_QUERY = 60
# The query arguments the shop's pages read: links keep these and no others, and only these
# make a different cached page.
FILTER_ARGS = ("campaign_id", "county", "certification", "storage", "price_min", "price_max")
CATEGORY_ARGS = (*FILTER_ARGS, "sort", "after")
SEARCH_ARGS = ("q", "campaign_id", "sort", "after")
KEPT_ARGS = ("q", *FILTER_ARGS, "sort")


def _sort_arg(allowed: tuple[str, ...] = SORTS) -> str | None:
    sort = request.args.get("sort", "")
    return sort if sort in allowed else None


def _after_arg() -> str | None:
    return request.args.get("after") or None


def find_page(session: Any, **kwargs: Any) -> browse.ProductPage:
    """A page of products; a stale or edited page link starts again from the first page."""
    try:
        return browse.find_products(session, **kwargs)
    except browse.InvalidCursor:
        return browse.find_products(session, **dict(kwargs, after=None))


@bp.app_template_global()
def url_with(**changes: Any) -> str:
    """This page's URL with some query arguments changed (None drops one); the page cursor is
    dropped unless given, since a new filter or order starts from the first page."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k in KEPT_ARGS}
    args.update(changes)
    values: dict[str, Any] = {k: v for k, v in args.items() if v not in (None, "")}
    values.update(request.view_args or {})
    return url_for(request.endpoint or "main.home", **values)


bp.add_app_template_global(card_views)
bp.add_app_template_global(shelf_price)


@bp.app_template_global()
def highlight_terms(text: str, terms: tuple[str, ...] = ()) -> str | Markup:
    """The text with the search terms marked (escaped either way)."""
    return product_search.highlight(text, terms) if terms else text


# Labels translated when shown (one lookup per call, not one per entry).
UNIT_LABELS = {
    "jin": lazy_gettext("jin (500 g)"),
    "kg": lazy_gettext("kg"),
    "box": lazy_gettext("box"),
    "bag": lazy_gettext("bag"),
    "piece": lazy_gettext("piece"),
}
STORAGE_LABELS = {
    "ambient": lazy_gettext("Room temperature"),
    "chilled": lazy_gettext("Chilled 0–4 °C"),
    "frozen": lazy_gettext("Frozen −18 °C"),
}
CERTIFICATION_LABELS = {
    "geographical_indication": lazy_gettext("Geographical indication"),
    "green_food": lazy_gettext("Green food"),
    "organic": lazy_gettext("Organic"),
}


def _label(labels: dict[str, Any], value: Any) -> str:
    key = getattr(value, "value", str(value))
    return str(labels[key]) if key in labels else key


@bp.app_template_global()
def unit_label(unit: Any) -> str:
    return _label(UNIT_LABELS, unit)


@bp.app_template_global()
def storage_label(storage: Any) -> str:
    return _label(STORAGE_LABELS, storage)


@bp.app_template_global()
def certification_label(kind: Any) -> str:
    return _label(CERTIFICATION_LABELS, kind)


@bp.app_template_global()
def weight_label(grams: int) -> str:
    if grams >= 1000 and grams % 100 == 0:
        return gettext("%(n)s kg", n=f"{grams / 1000:g}")
    return gettext("%(n)d g", n=grams)


@bp.get("/c/<slug>")
def category(slug: str):  # type: ignore[no-untyped-def]
    def context() -> dict[str, Any]:
        title, body = cached("category", CATEGORY_ARGS, lambda: _category_body(slug))
        return {"title": title, "body": body}

    return render_page("shop/page.html", context)


def _category_body(slug: str) -> tuple[str, Markup]:
    session = get_session()
    rows = catalog.categories(session)  # the one read of the categories: branch, ids and tree
    branch = browse.branch_in(rows, slug)
    options = browse.filter_options(
        session,
        category_ids=branch.ids,
        campaign_id=request.args.get("campaign_id"),
        campaigns=campaign_options(request.args.get("campaign_id")),
        counties=county_choices(branch.ids),
    )
    form = FilterForm(options, formdata=request.args)
    query: dict[str, Any] = {"category_ids": branch.ids, "sort": _sort_arg(), "limit": PAGE_SIZE}
    try:
        page = find_page(session, **form.filters(), **query, after=_after_arg())
    except ValidationError as exc:
        # Show what was wrong on the form, and the category unfiltered below it.
        show_service_error(form, exc)
        page = find_page(session, **query)
    body = render_template(
        "shop/_category.html",
        branch=branch,
        tree=browse.tree_of(rows),
        form=form,
        page=page,
    )
    return branch.category.label(str(get_locale())), Markup(body)  # noqa: S704 (our own template)


@bp.get("/search")
def search():  # type: ignore[no-untyped-def]
    q = (request.args.get("q") or "").strip()[:MAX_QUERY]
    return render_page(
        "shop/page.html",
        lambda: {"title": q or None, "body": cached("search", SEARCH_ARGS, lambda: _search_body(q))},
    )


def _search_body(q: str) -> Markup:
    """The results of q, narrowed to a campaign if one is chosen (a campaign alone lists its
    products: the campaign page's "search this campaign" lands here before anything is typed)."""
    session = get_session()
    page = None
    suggestions: list[str] = []
    chosen = request.args.get("campaign_id") or None
    form = CampaignForm(campaign_options(chosen), formdata=request.args)
    if q or chosen:
        query: dict[str, Any] = {"q": q, "sort": _sort_arg((*SORTS, "relevance")), "limit": PAGE_SIZE}
        try:
            page = find_page(session, **query, campaign_id=chosen, after=_after_arg())
        except ValidationError as exc:
            # Said on the form; the results of q alone below it (none without q).
            show_service_error(form, exc)
            page = find_page(session, **query) if q else None
        if q and not page.items:
            # The no-JavaScript stand-in for suggestions as you type: offered after the search.
            suggestions = [s for s in product_search.suggest(session, q, SUGGESTIONS) if s != q]
    body = render_template(
        "shop/_search.html",
        q=q,
        form=form,
        page=page,
        suggestions=suggestions,
        tree=browse.category_tree(session) if page is None or not page.items else [],
    )
    return Markup(body)  # noqa: S704 (our own template)


def shop_front() -> Markup:
    """The home page's shop part: categories, new produce, goods for the villages (cached)."""

    def make() -> Markup:
        session = get_session()
        body = render_template(
            "shop/_front.html",
            tree=browse.category_tree(session),
            farm=browse.find_products(session, flow="farm", limit=HOME_FARM_PRODUCTS),
            goods=browse.find_products(session, flow="goods", limit=HOME_GOODS),
        )
        return Markup(body)  # noqa: S704 (our own template)

    return cached("front", (), make)


def expected_for(session: Any, seller_id: int) -> schedule.Estimate | None:
    """When the signed-in buyer would get this seller's goods ordered now (None for a visitor,
    a buyer with no known destination, or no route). Rendered for the request, never cached: the
    sentence changes at the cut-off."""
    user = actor()
    if user is None:
        return None
    return schedule.estimate(session, seller_id, schedule.buyer_destination(session, user))


@bp.get("/p/<int:product_id>")
def product(product_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    detail = browse.product_page(session, product_id)
    return render_template(
        "shop/product.html",
        d=detail,
        p=detail.product,
        expected=expected_for(session, detail.product.seller_id),
    )


@bp.get("/s/<int:seller_id>")
def seller(seller_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    try:
        detail = browse.seller_page(session, seller_id, sort=_sort_arg(), after=_after_arg(), limit=PAGE_SIZE)
    except browse.InvalidCursor:
        detail = browse.seller_page(session, seller_id, sort=_sort_arg(), limit=PAGE_SIZE)
    return render_template("shop/seller.html", d=detail, profile=detail.profile, page=detail.products)
