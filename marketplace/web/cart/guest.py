"""A guest's cart: kept in the signed session cookie as {"<product id>": quantity} until they log
in, when it joins the buyer's saved cart (services.orders.cart keeps that one in the database).

Only the storage lives here; what may be in a cart is checked by services.orders.cart."""

from __future__ import annotations

from flask import session

from domain import User
from marketplace.db import get_session
from services.errors import ValidationError
from services.orders import cart as carts

CART_KEY = "cart"  # the guest's cart in the session: {"<product id>": quantity}


def guest_items() -> dict[int, int]:
    """The guest's cart from the session; a damaged one is dropped, not an error."""
    raw = session.get(CART_KEY)
    if not raw:
        return {}
    try:
        return carts.parse_items(raw)
    except ValidationError:
        session.pop(CART_KEY, None)
        return {}


def store_guest_items(cart: dict[int, int]) -> None:
    """Keep `cart` as the guest's cart (an empty one leaves nothing in the session)."""
    if cart:
        session[CART_KEY] = {str(k): v for k, v in cart.items()}
    else:
        session.pop(CART_KEY, None)


def merge_guest_cart(user: User) -> None:
    """At login: what the guest put in the cart joins the buyer's saved cart."""
    guest = guest_items()
    if guest:
        carts.merge_guest_cart(get_session(), user, guest)
    session.pop(CART_KEY, None)
