"""Proxy orders (代购) an agent places for villagers (API), for a native app or a shop PC client:
the last-kilometer catalog, the villager's cart, placing the order paid by the villager's QR,
cash now or on the agent's credit, the orders the agent placed and their QR / switch / cancel,
the agent's credit; county staff's credit limits. Villagers themselves: /api/v1/agent/villagers.
Every write takes an idempotency key (body or Idempotency-Key header) or is absolute (the cart).
services/proxy has the rules."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.orders.routes import IDEMPOTENCY_HEADER
from marketplace.api.proxy.schemas import (
    ProxyCartPutSchema,
    ProxyCartSchema,
    ProxyCatalogQuerySchema,
    ProxyCatalogSchema,
    ProxyCreditLimitSchema,
    ProxyCreditSchema,
    ProxyOrderSchema,
    ProxyOrdersQuerySchema,
    ProxyPlaceSchema,
    ProxySwitchSchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway
from services import proxy
from services.orders import cart as carts

blp = Blueprint("api_proxy", __name__, description="Proxy orders (代购) an agent places for villagers")


def _cart(villager_id: int, items: dict[int, int]) -> dict[str, Any]:
    quote = proxy.quote(get_session(), items, checkout_settings())
    return {
        "villager_id": villager_id,
        "lines": quote.lines,
        "problems": quote.problems,
        "items_fen": quote.items_fen,
        "shipping_fen": quote.shipping_fen,
        "total_fen": quote.total_fen,
    }


def _return_url(number: str) -> str:
    return url_for("proxy.order", number=number, _external=True)


@blp.route("/agent/proxy/catalog", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ProxyCatalogQuerySchema, location="query")
@blp.response(200, ProxyCatalogSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(422, description="A bad cursor or limit")
def catalog(query: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The last-kilometer catalog (farm inputs, daily goods, appliances) the agent shops in."""
    return proxy.search_goods(
        get_session(), actor(), q=query["q"], after=query["after"], limit=query["limit"]
    )


@blp.route("/agent/proxy/villagers/<int:villager_id>/cart", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ProxyCartSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not an agent, or a villager of another point")
@blp.alt_response(404, description="No such villager")
def get_cart(villager_id: int):  # type: ignore[no-untyped-def]
    """The agent's proxy cart for the villager, priced now for pickup at the point."""
    return _cart(villager_id, proxy.cart_items(get_session(), actor(), villager_id))


@blp.route("/agent/proxy/villagers/<int:villager_id>/cart", methods=["PUT"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ProxyCartPutSchema)
@blp.response(200, ProxyCartSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not an agent, or a villager of another point")
@blp.alt_response(404, description="No such villager, or a product not on sale")
@blp.alt_response(422, description="A quantity out of 1..999, or too many lines")
def put_cart(body: dict[str, Any], villager_id: int):  # type: ignore[no-untyped-def]
    """Make the villager's proxy cart exactly these items (absolute: a repeat changes nothing)."""
    items = carts.parse_items({item["product_id"]: item["quantity"] for item in body["items"]})
    return _cart(villager_id, proxy.save_cart(get_session(), actor(), villager_id, items))


@blp.route("/agent/proxy/villagers/<int:villager_id>/orders", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ProxyPlaceSchema)
@blp.response(201, ProxyOrderSchema)
@blp.alt_response(200, schema=ProxyOrderSchema, description="The order this idempotency key already placed")
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not an agent, or a villager of another point")
@blp.alt_response(404, description="No such villager")
@blp.alt_response(
    409,
    description="credit_exceeded: above the agent's remaining credit (the amounts in the message; nothing "
    "written); out_of_stock; unpaid_limit; the key used for another order",
)
@blp.alt_response(422, description="No idempotency key, an empty cart, an unknown payment method")
def place(body: dict[str, Any], villager_id: int):  # type: ignore[no-untyped-def]
    """Place the villager's cart (or `items`) for pickup at their point. wechat_pay / alipay: the
    answer holds the QR to show (qr_text, alipay_url); cash: paid now, the cash held by the
    agent; credit: paid for the sellers now on the agent's credit, the villager pays at pickup.
    The same key again returns the same order (200) and takes no cash twice."""
    items = body.get("items")
    wanted = carts.parse_items({i["product_id"]: i["quantity"] for i in items}) if items else None
    session = get_session()
    placed = proxy.place(
        session,
        payment_gateway(),
        actor(),
        villager_id,
        body["payment_method"],
        request_key(body),
        checkout_settings(),
        items=wanted,
    )
    return proxy.described(session, actor(), placed.order), 201 if placed.created else 200


@blp.route("/agent/proxy/orders", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ProxyOrdersQuerySchema, location="query")
@blp.response(200, ProxyOrderSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
@blp.alt_response(422, description="An unknown status or a bad villager id")
def orders(query: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Orders I placed, newest first: by villager, by payment state (unpaid, on_credit, paid, closed)."""
    session = get_session()
    user = actor()
    found = proxy.placed_orders(session, user, villager_id=query["villager_id"], status=query["status"])
    return [proxy.described(session, user, order) for order in found]


@blp.route("/agent/proxy/orders/<order_number>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ProxyOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such proxy order, or not placed by the agent or at their point")
def order(order_number: str):  # type: ignore[no-untyped-def]
    """One proxy order: the gateway is asked whether the villager paid the QR (poll this)."""
    followed, _error = proxy.follow(
        get_session(), payment_gateway(), actor(), order_number, return_url=_return_url(order_number)
    )
    return followed


@blp.route("/agent/proxy/orders/<order_number>/payment", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ProxySwitchSchema)
@blp.response(200, ProxyOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such proxy order")
@blp.alt_response(
    409, description="payment_closed: paid, cash or credit, cancelled or expired; payment_processing"
)
@blp.alt_response(422, description="Not wechat_pay or alipay, or no idempotency key")
@blp.alt_response(503, description="The payment gateway is down: the order stays payable")
def pay(body: dict[str, Any], order_number: str):  # type: ignore[no-untyped-def]
    """A new QR on the same order (the villager's wallet failed, or they want the other one).
    The same key again is one attempt."""
    session = get_session()
    order = proxy.switch_payment(
        session,
        payment_gateway(),
        actor(),
        order_number,
        body["method"],
        request_key(body),
        return_url=_return_url(order_number),
    )
    return proxy.described(session, actor(), order)


@blp.route("/agent/proxy/orders/<order_number>/cancel", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ProxyOrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such proxy order")
@blp.alt_response(409, description="Already paid (the refund path applies)")
def cancel(order_number: str):  # type: ignore[no-untyped-def]
    """Cancel an unpaid proxy order: the stock goes back. Cancelling again changes nothing."""
    session = get_session()
    order = proxy.cancel(session, payment_gateway(), actor(), order_number)
    return proxy.described(session, actor(), order)


@blp.route("/agent/proxy/credit", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ProxyCreditSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not a village agent")
def my_credit():  # type: ignore[no-untyped-def]
    """The agent's credit: the limit county staff set, used (what villagers owe), available."""
    return proxy.agent_credit(get_session(), actor())


@blp.route("/county/credit", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, ProxyCreditSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not county staff")
def county_credit():  # type: ignore[no-untyped-def]
    """The agents of the staff member's counties with their credit."""
    return proxy.county_credit(get_session(), actor())


@blp.route("/county/credit/<int:agent_id>", methods=["PUT"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(ProxyCreditLimitSchema)
@blp.response(200, ProxyCreditSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="Not staff of the county of the agent's point")
@blp.alt_response(404, description="No such village agent")
@blp.alt_response(409, description="The key was used for another limit")
@blp.alt_response(422, description="A limit below 0 or above the maximum, or no idempotency key")
def set_limit(body: dict[str, Any], agent_id: int):  # type: ignore[no-untyped-def]
    """Set an agent's credit limit in fen (0: no credit). The same key again changes nothing."""
    session = get_session()
    proxy.set_credit_limit(session, actor(), agent_id, body["limit_fen"], request_key(body))
    return proxy.agent_credit(session, actor(), agent_id)
