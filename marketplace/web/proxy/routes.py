"""Proxy orders (代购) an agent places for villagers (pages, /agent/proxy): pick a villager of the
point, search the last-kilometer catalog, fill the villager's cart, place the order paid by the
villager's QR (shown on the agent's screen), cash now or on the agent's credit; "orders I
placed"; county staff's page of their agents' credit limits. services/proxy decides who may do
what. Plain forms: every page works without JavaScript (the QR page reloads itself)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.gateways import checkout_settings, payment_gateway
from marketplace.qr import qr_svg
from marketplace.web.forms import form_error, query_id, reraise_access
from marketplace.web.proxy import bp
from marketplace.web.proxy.forms import KeyForm, PlaceForm, QuantityForm
from services import proxy, villagers
from services.errors import ServiceError, ValidationError
from services.logistics import desk
from services.orders import checkout
from services.payments.gateway import GatewayError


def _new_key() -> str:
    return checkout.new_idempotency_key()


def _own_credit() -> proxy.AgentCredit | None:
    try:
        return proxy.agent_credit(get_session(), actor())
    except ServiceError:
        return None


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """Pick the villager to shop for (their name, phone or pinyin initials)."""
    q = request.args.get("q", "")[:40]
    found = villagers.list_villagers(get_session(), actor(), q=q)  # 403: not an agent
    return render_template("proxy/index.html", villagers=found, q=q, credit=_own_credit())


def _render_shop(
    villager_id: int, *, place: PlaceForm | None = None, error: str | None = None, status: int = 200
):  # type: ignore[no-untyped-def]
    session = get_session()
    user = actor()
    villager = proxy.villager_for(session, user, villager_id)
    q = request.args.get("q", "")[:60]
    results = None
    if q or request.args.get("browse"):
        try:
            results = proxy.search_goods(session, user, q=q, after=request.args.get("after") or None)
        except ValidationError as exc:
            error = error or str(exc.message)
    items = proxy.cart_items(session, user, villager.id)
    quote = proxy.quote(session, items, checkout_settings())
    form = place or PlaceForm(formdata=None, data={"key": _new_key(), "payment_method": "wechat_pay"})
    return (
        render_template(
            "proxy/shop.html",
            villager=villager,
            q=q,
            results=results,
            items=items,
            quote=quote,
            form=form,
            qty=QuantityForm(formdata=None),
            credit=_own_credit(),
            error=error,
        ),
        status,
    )


@bp.get("/villagers/<int:villager_id>")
@login_required
def shop(villager_id: int):  # type: ignore[no-untyped-def]
    return _render_shop(villager_id)


@bp.post("/villagers/<int:villager_id>/cart/<int:product_id>")
@login_required
def set_quantity(villager_id: int, product_id: int):  # type: ignore[no-untyped-def]
    """Put exactly this many in the villager's cart (0 takes it out): a repeat changes nothing."""
    form = QuantityForm()
    if not form.validate_on_submit():
        return _render_shop(
            villager_id,
            error=gettext("This form has expired. Please reload the page and try again."),
            status=422,
        )
    try:
        proxy.set_item(get_session(), actor(), villager_id, product_id, form.quantity.data or "0")
    except ServiceError as exc:
        reraise_access(exc)
        return _render_shop(
            villager_id, error=str(exc.message), status=exc.status if exc.status != 400 else 422
        )
    back = request.form.get("q")
    return redirect(
        url_for(".shop", villager_id=villager_id, q=back)
        if back
        else url_for(".shop", villager_id=villager_id) + "#cart"
    )


@bp.post("/villagers/<int:villager_id>/place")
@login_required
def place(villager_id: int):  # type: ignore[no-untyped-def]
    form = PlaceForm()
    if not form.validate_on_submit():
        return _render_shop(villager_id, place=form, status=422)
    try:
        placed = proxy.place(
            get_session(),
            payment_gateway(),
            actor(),
            villager_id,
            form.payment_method.data,
            form.key.data,
            checkout_settings(),
            return_url=None,
        )
    except ServiceError as exc:
        message, status = form_error(form, exc)
        if exc.code == "credit_exceeded":
            message = str(exc.message)  # the amounts, above the form
        return _render_shop(villager_id, place=form, error=message, status=status)
    return redirect(url_for(".order", number=placed.order.number))


@bp.get("/orders")
@login_required
def orders():  # type: ignore[no-untyped-def]
    """Orders I placed: by villager and by payment state, with what to do next."""
    session = get_session()
    user = actor()
    villager_id = query_id("villager")
    status = request.args.get("status", "")
    error = None
    try:
        found = proxy.placed_orders(session, user, villager_id=villager_id, status=status or None)
    except ValidationError as exc:
        found, error = [], str(exc.message)
    return render_template(
        "proxy/orders.html",
        orders=[(o, proxy.state(o)) for o in found],
        status=status,
        villager_id=villager_id,
        statuses=list(proxy.STATUS_FILTERS),
        error=error,
    ), (422 if error else 200)


def _render_order(followed: proxy.Followed, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template(
        "proxy/order.html",
        f=followed,
        order=followed.order,
        qr=qr_svg(followed.qr_text) if followed.qr_text else None,
        journeys=[(sub, desk.journey(get_session(), actor(), sub)) for sub in followed.order.sub_orders],
        # One key per button: a double tap switches once; another button is another request.
        choices=[(m.value, _new_key()) for m in followed.choices],
        cancel=KeyForm(formdata=None),
        error=error,
    ), status


@bp.get("/orders/<number>")
@login_required
def order(number: str):  # type: ignore[no-untyped-def]
    followed, error = proxy.follow(get_session(), payment_gateway(), actor(), number)
    return _render_order(followed, error=error)


@bp.post("/orders/<number>/pay/method")
@login_required
def pay_method(number: str):  # type: ignore[no-untyped-def]
    """The villager's QR failed, or they want the other wallet: a new code on the same order."""
    session = get_session()
    form = KeyForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(gettext("This form has expired. Please reload the page and try again."))
        proxy.switch_payment(
            session, payment_gateway(), actor(), number, request.form.get("method", ""), form.key.data
        )
    except (ServiceError, GatewayError) as exc:
        reraise_access(exc)
        followed = proxy.described(session, actor(), proxy.proxy_order(session, actor(), number))
        return _render_order(
            followed, error=str(exc.message), status=exc.status if exc.status != 400 else 422
        )
    return redirect(url_for(".order", number=number))


@bp.post("/orders/<number>/cancel")
@login_required
def cancel(number: str):  # type: ignore[no-untyped-def]
    session = get_session()
    form = KeyForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(gettext("This form has expired. Please reload the page and try again."))
        proxy.cancel(session, payment_gateway(), actor(), number)
    except (ServiceError, GatewayError) as exc:
        reraise_access(exc)
        followed = proxy.described(session, actor(), proxy.proxy_order(session, actor(), number))
        return _render_order(
            followed, error=str(exc.message), status=exc.status if exc.status != 400 else 422
        )
    flash(gettext("The order is cancelled. The goods are back on sale."))
    return redirect(url_for(".order", number=number))
