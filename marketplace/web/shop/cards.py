"""What a product card shows, worked out in Python once per list for templates/shop/_macros.html.

A list page shows 20 cards, and the card is where a page spends its template time: done per
card in Jinja, each label was a gettext lookup, each link a url_for and each photo a macro
building six URLs. Here the labels are looked up once per list, the link comes from one
url_for, and a photo's srcsets (a pure function of its key and size) are kept per process. The
HTML is the template's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import current_app, url_for

from marketplace.db import get_session
from marketplace.formatting import money
from marketplace.web.shop.cache import running_campaigns, shelf_prices
from services import media
from services.browse import PhotoRef, ProductCard, ProductPage
from services.campaigns import pricing as campaign_pricing

# `url_for` of one product with this id, whose text the other products' links replace.
_PROBE_ID = 2_147_483_647


@dataclass(frozen=True, slots=True)
class Thumb:
    """A card's <picture>: the same sizes and URLs as templates/_photo.html's `picture`."""

    webp_srcset: str
    jpg_srcset: str
    src: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class CardView:
    item: ProductCard
    url: str
    price: str
    unit: str
    storage: str  # the cold-chain tag, "" for room temperature
    thumb: Thumb | None
    eager: bool
    # Under a running campaign (services/campaigns/pricing.py shelf_prices): the list price
    # struck through beside `price`, and the campaign's name as a badge.
    list_price: str = ""
    campaign: str = ""


@lru_cache(maxsize=8192)
def _thumb(prefix: str, key: str, width: int, height: int) -> Thumb:
    variants = []
    for w in media.variant_widths(width):
        h = max(1, round(height * w / width))
        variants.append(
            (
                w,
                h,
                f"{prefix}/{media.variant_key(key, w, 'webp')}",
                f"{prefix}/{media.variant_key(key, w, 'jpg')}",
            )
        )
    fallback = variants[1] if len(variants) > 1 else variants[0]
    return Thumb(
        webp_srcset=", ".join(f"{webp} {w}w" for w, _h, webp, _jpg in variants),
        jpg_srcset=", ".join(f"{jpg} {w}w" for w, _h, _webp, jpg in variants),
        src=fallback[3],
        width=fallback[0],
        height=fallback[1],
    )


def thumb(photo: PhotoRef) -> Thumb:
    return _thumb(current_app.config["MEDIA_URL_PREFIX"], photo.key, photo.width, photo.height)


def card_views(page: ProductPage, eager_first: int = 0) -> list[CardView]:
    """The page's cards, ready to show (the first `eager_first` photos load at once)."""
    from marketplace.web.shop.routes import storage_label, unit_label

    probe = url_for("shop.product", product_id=_PROBE_ID)
    head, _probe, tail = probe.rpartition(str(_PROBE_ID))
    units: dict[Any, str] = {}
    storages: dict[Any, str] = {}
    shelf = shelf_prices(page.items)
    views = []
    for n, item in enumerate(page.items):
        offer = shelf.get(item.id)
        if item.unit not in units:
            units[item.unit] = unit_label(item.unit)
        cold = item.storage_class.value != "ambient"
        if cold and item.storage_class not in storages:
            storages[item.storage_class] = storage_label(item.storage_class)
        views.append(
            CardView(
                item=item,
                url=f"{head}{item.id}{tail}",
                price=money(offer.price_fen if offer else item.price_fen),
                unit=units[item.unit],
                storage=storages[item.storage_class] if cold else "",
                thumb=thumb(item.photo) if item.photo else None,
                eager=n < eager_first,
                list_price=money(item.price_fen) if offer and offer.discounted else "",
                campaign=offer.campaign_name if offer else "",
            )
        )
    return views


def shelf_price(product: campaign_pricing.Priceable) -> campaign_pricing.ShelfPrice | None:
    """The product page's price now, from the one engine: None outside any running campaign."""
    if not running_campaigns():
        return None
    return campaign_pricing.shelf_prices(get_session(), [product]).get(product.id)
