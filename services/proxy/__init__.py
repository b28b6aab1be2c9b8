"""Proxy orders (代购) a village agent places for the villagers of their point (issue 11, item 3).

A package split by job behind this facade:
  shopping  the villager the agent acts for (their own point's only), the last-kilometer
            catalog, the proxy cart per (agent, villager)
  orders    placing the cart as an order paid by QR, cash now or on credit; "orders I placed";
            the villager's QR, switching or retrying it, cancelling an unpaid one
  credit    the agent's credit: limits county staff set, credit used (the ledger's agent_credit),
            placing on credit
Cash on pickup (`collect_on_pickup`) is services/cash.py's, beside cash now and remittance.
"""

from __future__ import annotations

from .credit import (
    MAX_CREDIT_LIMIT_FEN,
    AgentCredit,
    CreditExceeded,
    agent_credit,
    county_credit,
    credit_limit,
    credit_used,
    set_credit_limit,
)
from .orders import (
    METHODS,
    QR_METHODS,
    STATUS_FILTERS,
    Followed,
    cancel,
    described,
    follow,
    place,
    placed_orders,
    proxy_order,
    state,
    switch_payment,
)
from .shopping import cart_items, quote, save_cart, search_goods, set_item, villager_for

__all__ = [
    "MAX_CREDIT_LIMIT_FEN",
    "METHODS",
    "QR_METHODS",
    "STATUS_FILTERS",
    "AgentCredit",
    "CreditExceeded",
    "Followed",
    "agent_credit",
    "cancel",
    "cart_items",
    "county_credit",
    "credit_limit",
    "credit_used",
    "described",
    "follow",
    "place",
    "placed_orders",
    "proxy_order",
    "quote",
    "save_cart",
    "search_goods",
    "set_credit_limit",
    "set_item",
    "state",
    "switch_payment",
    "villager_for",
]
