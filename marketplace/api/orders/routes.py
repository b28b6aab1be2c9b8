"""Orders API: the buyer's saved cart and its quote, placing an order (idempotent), paying for it
through the gateway, cancelling it unpaid; sellers' and staff's sub-orders and every move on them.

Everything needs a bearer token. The services decide who may see and do what: someone else's
order is not found (404), a move not allowed now is a 409 with the reason. Money is integer fen.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request, url_for
from flask_smorest import Blueprint

from domain import DeliveryMethod
from marketplace import flash_door
from marketplace.api.common import BEARER, request_key, token_required
from marketplace.api.orders.schemas import (
    CartPutSchema,
    CartQuerySchema,
    CartSchema,
    OrderSchema,
    PaymentRequestSchema,
    PaymentSchema,
    PlacedOrderSchema,
    PlaceOrderSchema,
    ReasonSchema,
    StaffRefundSchema,
    SubOrderDetailSchema,
    SubOrderSchema,
    SubOrdersQuerySchema,
    TransitionSchema,
)
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway, pickup_code_keys
from services import places
from services.logistics import schedule
from services.orders import addresses as address_book
from services.orders import cart as carts
from services.orders import checkout, manage
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.payments import service as payments
from services.payments.gateway import GatewayError

log = logging.getLogger(__name__)

blp = Blueprint("api_orders", __name__, description="Cart, checkout, payments and order fulfilment")

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
    "description": "Used when the body has no idempotency_key: a repeated request does it once",
}


class _Shown:
    """An order or sub-order together with what the caller may see and do with it, as the
    services answered; the schemas read both (a schema only shapes data)."""

    def __init__(self, obj: Any, **seen: Any) -> None:
        self._obj = obj
        self.__dict__.update(seen)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)


def _shown_sub(sub: Any) -> _Shown:
    user = actor()
    return _Shown(
        sub,
        moves=manage.offered_moves(get_session(), user, sub),
        recipient_phone=manage.recipient_phone_for(user, sub.order),
    )


def _shown_order(order: Any) -> _Shown:
    code = manage.buyer_pickup_code(get_session(), actor(), order, pickup_code_keys())
    return _Shown(
        order,
        recipient_phone=manage.recipient_phone_for(actor(), order),
        pickup_code=code.code if code is not None and not code.locked else None,
        sub_orders=[_shown_sub(sub) for sub in order.sub_orders],
    )


def _cart(items: dict[int, int], quote: carts.Quote, pickup_node_id: int | None = None) -> dict[str, Any]:
    session = get_session()
    if quote.delivery == DeliveryMethod.PICKUP:
        point = places.pickup_point(session, pickup_node_id)
        destination = schedule.Destination(pickup_node=point)
    else:
        addresses = address_book.addresses_of(session, actor())
        destination = schedule.Destination(
            door_division_code=addresses[0].division_code if addresses else None
        )
    return {
        "items": [{"product_id": pid, "quantity": qty} for pid, qty in items.items()],
        "delivery": quote.delivery,
        "groups": [
            _Shown(
                group,
                expected=None
                if any(line.product.presale for line in group.lines)
                else schedule.estimate(session, group.seller_id, destination),
            )
            for group in quote.groups
        ],
        "problems": quote.problems,
        "list_fen": quote.list_fen,
        "discount_fen": quote.discount_fen,
        "items_fen": quote.items_fen,
        "shipping_fen": quote.shipping_fen,
        "total_fen": quote.total_fen,
    }


# --- the cart -----------------------------------------------------------------------------------------


@blp.route("/cart", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(CartQuerySchema, location="query")
@blp.response(200, CartSchema)
@blp.alt_response(401, description="No valid bearer token")
def get_cart(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The caller's saved cart, priced now: one parcel per seller, and the lines that cannot be bought."""
    session = get_session()
    items = carts.saved_cart(session, actor())
    quote = carts.quote(session, items, checkout_settings(), args["delivery"], buyer=actor())
    return _cart(items, quote, args.get("pickup_node_id"))


@blp.route("/cart", methods=["PUT"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(CartPutSchema)
@blp.response(200, CartSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="A product that is not on sale")
@blp.alt_response(422, description="A quantity out of 1..999, or a product twice")
def put_cart(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Make the saved cart exactly these items (absolute: a repeated request changes nothing)."""
    session = get_session()
    items = carts.parse_items({item["product_id"]: item["quantity"] for item in body["items"]})
    for product_id in items:
        carts.buyable_product(session, product_id)
    saved = carts.save_cart(session, actor(), items)
    return _cart(saved, carts.quote(session, saved, checkout_settings(), buyer=actor()))


# --- orders -------------------------------------------------------------------------------------------


@blp.route("/orders", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(PlaceOrderSchema())  # an instance: webargs would build one from a class on every request
@blp.response(201, PlacedOrderSchema)
@blp.alt_response(200, schema=PlacedOrderSchema, description="The order this idempotency key already placed")
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(
    409, description="Out of stock, the key was used for other items, or the price changed (price_changed)"
)
@blp.alt_response(422, description="Invalid fields (see errors)")
def place_order(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Place an order for these items: priced by the server, stock reserved until pay_by, and
    its PaymentIntent created (`payment.client_secret` for Stripe.js, or a wallet's
    `next_action`). If the gateway is down the order is still placed, with payment status
    `creating`: finish it with POST /orders/{number}/payment."""
    address = body.get("address")
    contact = body.get("pickup_contact")
    data = CheckoutInput(
        items={item["product_id"]: item["quantity"] for item in body["items"]},
        idempotency_key=request_key(body),
        payment_method=body["payment_method"].value,
        delivery=body["delivery"].value,
        address_id=body.get("address_id"),
        address=AddressInput(**address) if address else None,
        pickup_node_id=body.get("pickup_node_id"),
        pickup_contact=AddressInput(**contact) if contact else None,
        expected_total_fen=body.get("expected_total_fen"),
        flash_items=body["flash_items"],
        flash_tickets=request.environ.get(flash_door.TICKETS),  # units the door let through
    )
    session = get_session()
    placed = checkout.place_order(session, actor(), data, checkout_settings())
    # The stock is already held and committed; the gateway call happens outside that transaction.
    try:
        payments.ensure_intent(
            session, payment_gateway(), placed.order, return_url=_return_url(placed.order.number)
        )
    except (GatewayError, payments.PaymentClosed):
        log.warning("order %s placed, payment not started yet", placed.order.number, exc_info=True)
    return _shown_order(placed.order), 201 if placed.created else 200


@blp.route("/orders", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, OrderSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
def list_orders():  # type: ignore[no-untyped-def]
    """The caller's orders, newest first."""
    return [_shown_order(order) for order in manage.buyer_orders(get_session(), actor())]


@blp.route("/orders/<order_number>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, OrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such order, or someone else's")
def get_order(order_number: str):  # type: ignore[no-untyped-def]
    """One order with its sub-orders (the buyer; staff in reach see it with the phone masked)."""
    return _shown_order(manage.visible_order(get_session(), actor(), order_number))


def _return_url(order_number: str) -> str:
    # Where a wallet sends the buyer back: the checkout's pay page.
    return url_for("cart.pay", number=order_number, _external=True)


@blp.route("/orders/<order_number>/payment", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(PaymentRequestSchema)
@blp.response(200, PaymentSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(402, description="card_declined: the order stays payable with another card or way")
@blp.alt_response(404, description="No such order, or someone else's")
@blp.alt_response(
    409,
    description="payment_closed: paid, cancelled or expired (nothing written); payment_processing: a "
    "payment is on its way, wait for its result; conflict: the key was used for another method",
)
@blp.alt_response(
    422, description="An unknown method (or cash), no idempotency key with method, or a pre-sale not by card"
)
@blp.alt_response(503, description="The payment gateway is down: the order stays payable")
def pay(body: dict[str, Any], order_number: str):  # type: ignore[no-untyped-def]
    """Without payment_method: the order's PaymentIntent (client_secret for Stripe.js, or the
    wallet's next_action). With a tokenised card (pm_…): confirm the payment with it. With method
    (card, wechat_pay, alipay): pay again, or another way, on the same order (after a decline, or
    instead of a QR code shown) — no new order, the stock stays held until pay_by."""
    session = get_session()
    # Staff may look at an order; only its buyer pays for it.
    order = manage.own_order(session, actor(), order_number)
    card = body.get("payment_method")
    return_url = _return_url(order.number)
    if body.get("method") is not None:
        key = checkout.check_idempotency_key(request_key(body))
        payment = payments.switch_method(
            session, payment_gateway(), order, body["method"], key=key, return_url=return_url
        )
        if not card:
            return payment
    if card:
        return payments.confirm_with(session, payment_gateway(), order, card, return_url=return_url)
    return payments.ensure_intent(session, payment_gateway(), order, return_url=return_url)


@blp.route("/orders/<order_number>/cancel", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, OrderSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such order, or someone else's")
@blp.alt_response(409, description="Already paid (ask for a refund instead)")
def cancel_order(order_number: str):  # type: ignore[no-untyped-def]
    """Cancel an unpaid order: its stock goes back on sale. Its buyer, or staff of the order's
    point or county (services.orders.manage.cancel_unpaid, as on the web). Repeating it changes
    nothing."""
    return _shown_order(manage.cancel_unpaid(get_session(), payment_gateway(), actor(), order_number))


# --- sub-orders: fulfilment -----------------------------------------------------------------------------


@blp.route("/sub-orders", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(SubOrdersQuerySchema, location="query")
@blp.response(200, SubOrderSchema(many=True))
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(403, description="role=staff for someone who is no staff")
@blp.alt_response(404, description="seller_id of a farmer who gave the caller no consent")
def list_sub_orders(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Orders to fulfil (the caller's, or a consenting farmer's for their agent), or with
    role=staff the orders in the caller's reach; newest first, optionally of one status."""
    status = args["status"].value if args.get("status") else None
    if args["role"] == "staff":
        subs = manage.staff_sub_orders(get_session(), actor(), status=status)
    else:
        subs = manage.seller_sub_orders(
            get_session(), actor(), seller_id=args.get("seller_id"), status=status
        )
    return [_shown_sub(sub) for sub in subs]


@blp.route("/sub-orders/<sub_number>", methods=["GET"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, SubOrderDetailSchema)
@blp.alt_response(401, description="No valid bearer token")
@blp.alt_response(404, description="No such sub-order, or none of the caller's business")
def get_sub_order(sub_number: str):  # type: ignore[no-untyped-def]
    """One seller's part of an order, with its history and the moves the caller may make."""
    sub, _who = manage.visible_sub_order(get_session(), actor(), sub_number)
    return _shown_sub(sub)


_MOVE_ERRORS = (
    (401, "No valid bearer token"),
    (403, "Not a party that may do this"),
    (404, "No such sub-order, or none of the caller's business"),
    (409, "illegal_transition: not possible from the current status"),
)


def _documented(view: Any) -> Any:
    for status, description in _MOVE_ERRORS:
        view = blp.alt_response(status, description=description)(view)
    return view


@blp.route("/sub-orders/<sub_number>/transition", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(TransitionSchema)
@blp.response(200, SubOrderDetailSchema)
@blp.alt_response(422, description="wrong_pickup_code, or no pickup code where one is needed")
@_documented
def transition(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """A move with no money attached: accepted (seller), in_transit, ready_for_pickup,
    out_for_delivery (staff), completed (buyer or staff). Staff handing a pickup order's parcel
    over send the buyer's pickup_code: a wrong one is a 422 with the tries left, and after 5 the
    code is locked (409 pickup_code_locked) until the buyer has a new one issued. Repeating it
    changes nothing."""
    return _shown_sub(
        manage.move(
            get_session(),
            actor(),
            sub_number,
            body["to"].value,
            note=body["note"],
            pickup_code=body["pickup_code"],
            keys=pickup_code_keys(),
        )
    )


@blp.route("/sub-orders/<sub_number>/decline", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ReasonSchema)
@blp.response(200, SubOrderDetailSchema)
@blp.alt_response(503, description="The payment gateway is down: try again")
@_documented
def decline(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """The seller cannot fill it: the buyer's money goes back at once (a pre-sale's
    authorisation is released)."""
    return _shown_sub(manage.decline(get_session(), payment_gateway(), actor(), sub_number, body["reason"]))


@blp.route("/sub-orders/<sub_number>/ready", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.response(200, SubOrderDetailSchema)
@_documented
def mark_ready(sub_number: str):  # type: ignore[no-untyped-def]
    """The seller packed it and will bring it to the village point."""
    return _shown_sub(manage.mark_ready(get_session(), actor(), sub_number))


@blp.route("/sub-orders/<sub_number>/refund-request", methods=["POST"])
@token_required
@blp.doc(security=BEARER)
@blp.arguments(ReasonSchema)
@blp.response(200, SubOrderDetailSchema)
@blp.alt_response(503, description="The payment gateway is down: try again")
@_documented
def request_refund(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """The buyer asks for their money back: refunded at once before the seller accepted,
    decided by staff after delivery."""
    return _shown_sub(
        manage.request_refund(get_session(), payment_gateway(), actor(), sub_number, body["reason"])
    )


@blp.route("/sub-orders/<sub_number>/refund", methods=["POST"])
@token_required
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(StaffRefundSchema)
@blp.response(200, SubOrderDetailSchema)
@blp.alt_response(422, description="No idempotency key, more than is left to refund, or bad units")
@blp.alt_response(503, description="The payment gateway is down: repeat with the same key")
@_documented
def refund(body: dict[str, Any], sub_number: str):  # type: ignore[no-untyped-def]
    """Staff give back amount_fen (all that is left when absent) of a paid sub-order, or units of
    its lines for exactly what they were paid."""
    session = get_session()
    manage.visible_sub_order(session, actor(), sub_number)
    key = checkout.check_idempotency_key(request_key(body))
    units = body.get("units")
    return _shown_sub(
        manage.staff_refund(
            session,
            payment_gateway(),
            actor(),
            sub_number,
            body.get("amount_fen"),
            body["reason"],
            key,
            units=None if units is None else {u["line_id"]: u["quantity"] for u in units},
        )
    )
