"""The buyer's cart, checkout and payment pages.

A guest's cart lives in the session (marketplace.web.cart.guest), a logged-in buyer's in the
database; the guest's is merged in at login. Checkout needs a login. Every page works without
JavaScript except the card form, which needs Stripe.js (the page says so); WeChat Pay shows its
QR code rendered here and reloads itself until the payment lands.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from sqlalchemy.exc import SQLAlchemyError

from domain import DeliveryMethod, Order, PaymentMethod, PaymentStatus, User
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway
from marketplace.qr import qr_svg
from marketplace.web.cart import bp
from marketplace.web.cart.forms import CheckoutForm, QuantityForm, decode_items, encode_items
from marketplace.web.cart.guest import guest_items, store_guest_items
from marketplace.web.forms import form_error, form_id, reraise_access, typed_quantity
from marketplace.web.shop.routes import expected_for
from services import browse, catalog, places
from services.errors import ServiceError, ValidationError
from services.logistics import schedule
from services.orders import addresses as address_book
from services.orders import cart as carts
from services.orders import checkout, manage
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.payments import service as payments
from services.payments.gateway import GatewayError

PICKER_PARAMS = tuple(level.value for level in places.VILLAGE_PICKER_LEVELS)


def _me() -> User:
    user = actor()
    assert user is not None  # login_required
    return user


# --- whose cart -----------------------------------------------------------------------------------


def _items() -> dict[int, int]:
    user = actor()
    return carts.saved_cart(get_session(), user) if user is not None else guest_items()


def _store(items: dict[int, int]) -> None:
    user = actor()
    if user is not None:
        carts.save_cart(get_session(), user, items)
    else:
        store_guest_items(items)


def _cart_count() -> int:
    """Lines in the cart, for the top bar: the session for guests, one small query for users."""
    user = actor()
    if user is None:
        return len(guest_items())
    try:
        return len(carts.saved_cart(get_session(), user))
    except SQLAlchemyError:  # the error page after a database failure must still render
        return 0


@bp.app_context_processor
def cart_nav() -> dict[str, Any]:
    # A callable: only pages that show the top bar pay for it.
    return {"cart_count": _cart_count}


# --- the cart ------------------------------------------------------------------------------------


def _render_cart(failed: tuple[int, QuantityForm] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    quote = carts.quote(get_session(), _items(), checkout_settings(), photos=True, buyer=actor())
    forms = {
        line.product.id: QuantityForm(formdata=None, data={"quantity": str(line.quantity)})
        for line in [*quote.lines, *quote.problems]
    }
    if failed is not None:
        forms[failed[0]] = failed[1]
    return render_template("cart/cart.html", quote=quote, forms=forms, logged_in=actor() is not None), status


@bp.get("/")
def view():  # type: ignore[no-untyped-def]
    return _render_cart()


@bp.post("/add/<int:product_id>")
def add(product_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    product = carts.buyable_product(db, product_id)  # 404 for what is not on sale
    form = QuantityForm()
    try:
        items = carts.add_to(_items(), product.id, typed_quantity(form.quantity.data))
    except ValidationError as exc:
        # The product page again, with the message and what was typed.
        detail = browse.product_page(db, product_id)
        errors = [str(m) for m in exc.field_errors.get("quantity") or [exc.message]]
        return render_template(
            "shop/product.html",
            d=detail,
            p=detail.product,
            expected=expected_for(db, detail.product.seller_id),
            cart_quantity=form.quantity.data or "",
            cart_errors=errors,
        ), 422
    _store(items)
    flash(gettext("%(name)s is in your cart.", name=product.name), "success")
    return redirect(url_for("shop.product", product_id=product.id))


@bp.post("/items/<int:product_id>")
def update(product_id: int):  # type: ignore[no-untyped-def]
    items = _items()
    if product_id not in items:
        return redirect(url_for(".view"))  # removed in another tab meanwhile
    form = QuantityForm()
    try:
        quantity = typed_quantity(form.quantity.data)
    except ValidationError as exc:
        form.quantity.errors = [str(m) for m in exc.field_errors.get("quantity") or [exc.message]]
        return _render_cart(failed=(product_id, form), status=422)
    _store(carts.set_in(items, product_id, quantity))
    return redirect(url_for(".view") + f"#p{product_id}")


@bp.post("/items/<int:product_id>/remove")
def remove(product_id: int):  # type: ignore[no-untyped-def]
    items = _items()
    if product_id in items:
        _store(carts.set_in(items, product_id, 0))
        flash(gettext("Removed from your cart."), "success")
    return redirect(url_for(".view"))


# --- checkout ------------------------------------------------------------------------------------


def _checkout_input(form: CheckoutForm, picker: places.VillagePicker) -> CheckoutInput:
    delivery = form.delivery.data or ""
    new_address = form.address_id.data in (None, "", "new")
    pickup = delivery == DeliveryMethod.PICKUP.value
    # The ids the chosen delivery uses are checked (a field error); the others are not read.
    address_id = None if new_address or pickup else form_id(form.address_id.data, "address_id")
    point_id = form.pickup_node_id.data
    pickup_node_id = form_id(point_id, "pickup_node_id") if pickup and point_id else None
    return CheckoutInput(
        items=decode_items(form.items.data),
        idempotency_key=form.key.data or "",
        expected_items_fen=form.items_fen.data or None,
        flash_items=[i for i in (form.flash_items.data or "").split(",") if i],
        payment_method=form.payment_method.data or "",
        delivery=delivery,
        address_id=address_id,
        address=AddressInput(
            recipient=form.recipient.data,
            phone=form.phone.data,
            division_code=picker.code,
            detail=form.detail.data,
        )
        if new_address
        else None,
        pickup_node_id=pickup_node_id,
        pickup_contact=AddressInput(recipient=form.pickup_recipient.data, phone=form.pickup_phone.data),
    )


def _show_checkout_error(form: CheckoutForm, exc: ServiceError) -> tuple[str, list[str], int]:
    """The service's errors on the form; returns (message for the top, village picker errors,
    status)."""
    reraise_access(exc)
    place_errors = [str(m) for m in exc.field_errors.get("division_code", [])]
    exc.field_errors = {k: v for k, v in exc.field_errors.items() if k != "division_code"}
    # The pickup contact is checked under the address's field names.
    pickup = form.delivery.data == DeliveryMethod.PICKUP.value
    renamed = {"recipient": "pickup_recipient", "phone": "pickup_phone"} if pickup else None
    message, status = form_error(form, exc, renamed=renamed)
    # A long form on a small screen: always say at the top that something needs fixing.
    return message or str(exc.message), place_errors, status


@bp.route("/checkout", methods=["GET", "POST"])
@login_required
def checkout_page():  # type: ignore[no-untyped-def]
    db = get_session()
    user = _me()
    settings = checkout_settings()
    items = carts.saved_cart(db, user)
    addresses = address_book.addresses_of(db, user)
    form = CheckoutForm()
    if request.method == "GET":
        if not items:
            flash(gettext("Your cart is empty."), "info")
            return redirect(url_for(".view"))
        default = next((a for a in addresses if a.is_default), addresses[0] if addresses else None)
        form.address_id.data = str(default.id) if default else "new"
        form.recipient.data = form.pickup_recipient.data = user.display_name
        form.phone.data = form.pickup_phone.data = user.phone
        selection: dict[str, str] = {}
    else:
        selection = {k: request.form.get(k, "") for k in PICKER_PARAMS}
    if request.method == "GET" or not form.key.data:
        form.key.data = checkout.new_idempotency_key()
    form.address_id.choices = [(str(a.id), a.id) for a in addresses] + [("new", "new")]  # type: ignore[assignment]
    picker = places.village_picker(db, selection)
    points = places.pickup_points(db)
    counties = {p.county_code: p.county for p in points}
    form.pickup_county.choices = [("", gettext("All counties"))] + [  # type: ignore[assignment]
        (code, f"{c.parent.name if c.parent else ''}{c.name}") for code, c in counties.items()
    ]
    if form.pickup_county.data not in counties:
        form.pickup_county.data = ""
    shown_points = [
        p for p in points if not form.pickup_county.data or p.county_code == form.pickup_county.data
    ]
    chosen_point = str(form.pickup_node_id.data or "")
    if chosen_point and chosen_point not in {str(p.id) for p in shown_points}:
        # Keep the chosen point on the list even when another county is shown.
        shown_points += [p for p in points if str(p.id) == chosen_point]
    form.pickup_node_id.choices = [(str(p.id), p.name) for p in shown_points]  # type: ignore[assignment]

    error = None
    place_errors: list[str] = []
    status = 200
    if request.method == "POST" and request.form.get("action") == "place":
        try:
            data = _checkout_input(form, picker)
            placed = checkout.place_order(db, user, data, settings)
        except ServiceError as exc:
            error, place_errors, status = _show_checkout_error(form, exc)
            if "idempotency_key" in exc.field_errors or exc.status == 409:
                form.key.data = checkout.new_idempotency_key()
        else:
            if data.address is not None and form.save_address.data and placed.created:
                # The order has the address; the address book is a convenience.
                with contextlib.suppress(ServiceError):
                    address_book.save_address(db, user, data.address)
            return redirect(url_for(".pay", number=placed.order.number))
        items = carts.saved_cart(db, user)
    form.items.data = encode_items(items)
    # Both deliveries priced: the page shows the one chosen (and, without CSS :has(), both).
    quotes = {d.value: carts.quote(db, items, settings, d, photos=True, buyer=user) for d in DeliveryMethod}
    chosen = form.delivery.data if form.delivery.data in quotes else DeliveryMethod.HOME.value
    form.items_fen.data = str(quotes[chosen].items_fen)  # the price this page shows
    form.flash_items.data = ",".join(str(i) for i in quotes[chosen].flash_items)
    return render_template(
        "cart/checkout.html",
        form=form,
        quote=quotes[chosen],
        quotes=quotes,
        addresses=addresses,
        picker=picker,
        place_errors=place_errors,
        points=shown_points,
        expected=_expected(db, quotes[chosen].groups, form, addresses, picker),
        error=error,
        # A large order is held for less time (services.orders.pricing.CheckoutSettings).
        pay_minutes=int(settings.payment_window_for(quotes[chosen].count).total_seconds() // 60),
    ), status


def _expected(
    db: Any,
    groups: list[carts.SellerGroup],
    form: CheckoutForm,
    addresses: list[Any],
    picker: places.VillagePicker,
) -> dict[int, tuple[schedule.Estimate | None, schedule.Estimate | None]]:
    """Each parcel's expected day, (at the chosen pickup point, at the chosen address's door),
    None where nothing is chosen yet or the network has no route."""
    point = places.pickup_point(db, form.pickup_node_id.data)
    chosen = str(form.address_id.data or "")
    door = next((a.division_code for a in addresses if str(a.id) == chosen), None)
    if door is None and chosen in ("", "new") and len(picker.code) >= 9:  # a town at least
        door = picker.code
    out = {}
    for group in groups:
        at_point = (
            schedule.estimate(db, group.seller_id, schedule.Destination(pickup_node=point)) if point else None
        )
        at_door = (
            schedule.estimate(db, group.seller_id, schedule.Destination(door_division_code=door))
            if door
            else None
        )
        out[group.seller_id] = (at_point, at_door)
    return out


# --- paying --------------------------------------------------------------------------------------


def _return_url(order: Order) -> str:
    return url_for(".pay_return", number=order.number, _external=True)


def _order_url(order: Order) -> str:
    """The buyer's order page (web.orders)."""
    return url_for("orders.order", order_number=order.number)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _shop_names(order: Order) -> dict[int, str]:
    names: dict[int, str] = {}
    for sub in order.sub_orders:
        try:
            shop: str | None = catalog.get_seller_profile(get_session(), sub.seller_id).shop_name
        except ServiceError:
            shop = None
        names[sub.seller_id] = catalog.seller_name(sub.seller, shop)
    return names


def _method_name(method: PaymentMethod) -> str:
    names = {
        PaymentMethod.CARD: gettext("Bank card"),
        PaymentMethod.WECHAT_PAY: gettext("WeChat Pay"),
        PaymentMethod.ALIPAY: gettext("Alipay"),
    }
    return names.get(method, method.value)


def _render_pay(order: Order, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    payment = order.payment
    state = payments.pay_state(order)
    action = payment.next_action or {}
    if state in ("card", "authenticate"):
        # Stripe.js and its frames and calls: allowed on this page only.
        origins = {
            _origin(current_app.config["STRIPE_JS_URL"]),
            _origin(current_app.config["STRIPE_API_BASE"]),
        }
        g.csp_extra_origin = " ".join(sorted(o for o in origins if o))
    qr_text = payments.wechat_qr_text(payment) if state == "wechat" else None
    if error is None and state == "wallet_retry" and payment.intent_id and payment.last_error:
        # The wallet declined or the buyer gave up there: say so, and offer to pay again.
        error = gettext(
            "The payment with %(method)s did not go through. Pay again, or choose another way to pay.",
            method=_method_name(payment.method),
        )
    choices = payments.method_choices(order)
    return render_template(
        "cart/pay.html",
        order=order,
        payment=payment,
        state=state,
        error=error,
        # One key per button: a double tap switches once; another button is another request.
        choices=[(method.value, checkout.new_idempotency_key()) for method in choices],
        qr=qr_svg(qr_text) if qr_text else None,
        qr_page=(action.get("wechat_pay_display_qr_code") or {}).get("hosted_instructions_url"),
        alipay_url=payments.alipay_url(payment) if state == "alipay" else None,
        shops=_shop_names(order),
        return_url=url_for(".pay_return", number=order.number),
        order_url=_order_url(order),
    ), status


@bp.get("/orders/<number>/pay")
@login_required
def pay(number: str):  # type: ignore[no-untyped-def]
    db = get_session()
    order = manage.own_order(db, _me(), number)
    payment = order.payment
    state = payments.pay_state(order)
    error = None
    status = 200
    # Wallets: the intent is created and confirmed at once (its answer holds the QR code or the
    # redirect); each reload asks the gateway whether the buyer has paid. A card waiting for the
    # bank's check or still processing is asked too (it may have finished in another tab).
    wallet = payment.method in (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)
    if state in ("authenticate", "processing") or (wallet and state in ("wechat", "alipay", "wallet_retry")):
        try:
            if payment.intent_id is None:
                payments.ensure_intent(db, payment_gateway(), order, return_url=_return_url(order))
            else:
                payments.refresh(db, payment_gateway(), order)
        except (GatewayError, payments.PaymentClosed) as exc:
            error, status = str(exc.message), exc.status
    return _render_pay(order, error=error, status=status)


@bp.post("/orders/<number>/pay/method")
@login_required
def pay_method(number: str):  # type: ignore[no-untyped-def]
    """Pay again, or another way (bank card, WeChat Pay, Alipay), without ordering again."""
    db = get_session()
    order = manage.own_order(db, _me(), number)
    try:
        payments.switch_method(
            db,
            payment_gateway(),
            order,
            request.form.get("method", ""),
            key=checkout.check_idempotency_key(request.form.get("key")),
            return_url=_return_url(order),
        )
    except ServiceError as exc:
        reraise_access(exc)
        # Paid meanwhile, closed, processing, gateway down: say so on the pay page as it stands.
        return _render_pay(order, error=str(exc.message), status=exc.status)
    return redirect(url_for(".pay", number=order.number))


@bp.post("/orders/<number>/pay/card")
@login_required
def pay_card(number: str):  # type: ignore[no-untyped-def]
    """pay.js posts the card's payment method here (tokenised by Stripe.js in the browser)."""
    order = manage.own_order(get_session(), _me(), number)
    try:
        payment = payments.confirm_with(
            get_session(),
            payment_gateway(),
            order,
            request.form.get("payment_method", ""),
            return_url=_return_url(order),
        )
    except ServiceError as exc:
        reraise_access(exc)
        # Declined, gateway down, closed: say so; the order stays payable while it is open.
        return _render_pay(order, error=str(exc.message), status=exc.status)
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        return redirect(url_for(".pay", number=order.number))  # the bank's check (3-D Secure) next
    return redirect(url_for(".pay_return", number=order.number))


@bp.get("/orders/<number>/return")
@login_required
def pay_return(number: str):  # type: ignore[no-untyped-def]
    """Where the gateway (or pay.js) sends the buyer back: ask the gateway, show the outcome."""
    order = manage.own_order(get_session(), _me(), number)
    error = None
    status = 200
    try:
        payments.refresh(get_session(), payment_gateway(), order)
    except GatewayError as exc:
        error, status = str(exc.message), exc.status
    payment = order.payment
    return render_template(
        "cart/return.html",
        order=order,
        payment=payment,
        state=payments.pay_state(order),
        error=error,
        shops=_shop_names(order),
        order_url=_order_url(order),
    ), status
