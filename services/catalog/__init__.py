"""The catalog's use cases: seller profiles, agents enrolling farmers under a consent record, and
listings (create, edit, one-tap price and stock, pause and resume), each change audited.

sellers: seller profiles. consents: agents listing for farmers (托管代运营). access: who may list
and change listings for whom. listings: the listings themselves. steps: the listing form's steps
and draft. parsing: prices, stocks and weights as typed. categories: the tree and its import.
audit: the audit trail. common: what those share.
"""

from __future__ import annotations

from .access import SellingAs, can_edit_product, require_editor, selling_as
from .categories import SLUG_RE, categories, category_groups, flow_of, import_categories, is_slug
from .common import SELLER_ROLES, UNIT_WEIGHT_G
from .consents import (
    active_consent,
    agent_point_ids,
    consents_of_farmer,
    enroll_farmer,
    farmers_of_agent,
    request_consent_code,
    revoke_consent,
)
from .listings import (
    ListingInput,
    create_product,
    get_product,
    get_public_product,
    listing_history,
    listings_of,
    patch_product,
    product_history,
    set_price_and_stock,
    set_status,
    update_product,
    visible_product,
)
from .parsing import parse_count, parse_weight_g, parse_yuan
from .sellers import get_seller_profile, save_seller_profile, seller_name
from .steps import save_draft, validate_listing

__all__ = [
    "SELLER_ROLES",
    "SLUG_RE",
    "UNIT_WEIGHT_G",
    "ListingInput",
    "SellingAs",
    "active_consent",
    "agent_point_ids",
    "can_edit_product",
    "categories",
    "category_groups",
    "consents_of_farmer",
    "create_product",
    "enroll_farmer",
    "farmers_of_agent",
    "flow_of",
    "get_product",
    "get_public_product",
    "get_seller_profile",
    "import_categories",
    "is_slug",
    "listing_history",
    "listings_of",
    "parse_count",
    "parse_weight_g",
    "parse_yuan",
    "patch_product",
    "product_history",
    "request_consent_code",
    "require_editor",
    "revoke_consent",
    "save_draft",
    "save_seller_profile",
    "seller_name",
    "selling_as",
    "set_price_and_stock",
    "set_status",
    "update_product",
    "validate_listing",
    "visible_product",
]
