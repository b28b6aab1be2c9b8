"""The order pages: a buyer's orders and each order's detail (pay, cancel unpaid, confirm
receipt, ask for a refund, the pickup code and a new one); a seller's orders to fulfil (accept,
decline, packed; agents switch between their consenting farmers with ?farmer=); the
staff's list and the sub-order page with the moves the state machine allows (handing a pickup
parcel over takes the buyer's pickup code) and a refund form. The hand-in is the intake form of
the receiving agent or county staff (marketplace/web/intake): the sub-order page links to it.

Every action is a POST with the CSRF token. The services decide who may do what: a move that is
not allowed now re-renders the sub-order page with the reason (409), someone else's order is
simply not found (404)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import Order, OrderStatus, SubOrder, User
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.formatting import money, order_status_label
from marketplace.gateways import payment_gateway, pickup_code_keys
from marketplace.web.forms import query_id, reraise_access, safe_next
from marketplace.web.orders import bp
from marketplace.web.orders.forms import (
    UNITS_PREFIX,
    ActionForm,
    DeclineForm,
    MoveForm,
    RefundRequestForm,
    StaffRefundForm,
)
from services import catalog, intake, places
from services.errors import ServiceError, ValidationError
from services.logistics import desk
from services.orders import checkout, manage
from services.orders.cart import MAX_LINE_QUANTITY
from services.orders.manage import SubActions
from services.validation import parse_id, parse_int

S = OrderStatus
# The filter chips of the lists, in the order work flows.
SELLER_FILTERS = (S.PAID, S.ACCEPTED, S.HANDED_IN, S.IN_TRANSIT, S.COMPLETED, S.REFUND_REQUESTED)
STAFF_FILTERS = (
    S.PAID,
    S.ACCEPTED,
    S.HANDED_IN,
    S.IN_TRANSIT,
    S.READY_FOR_PICKUP,
    S.OUT_FOR_DELIVERY,
    S.REFUND_REQUESTED,
    S.COMPLETED,
)


def _me() -> User:
    user = actor()
    assert user is not None  # login_required
    return user


def _with_actions(subs: list[SubOrder]) -> list[tuple[SubOrder, SubActions]]:
    session = get_session()
    user = _me()
    return [(sub, manage.sub_actions(session, user, sub)) for sub in subs]


def _back(sub_number: str, form: ActionForm) -> Any:
    target = form.next.data
    return redirect(safe_next(target) if target else url_for(".sub_order", sub_number=sub_number))


def _moved(sub: SubOrder) -> None:
    flash(
        gettext("Order %(number)s: %(status)s.", number=sub.number, status=order_status_label(sub.status)),
        "success",
    )


# --- buyers -------------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def mine():  # type: ignore[no-untyped-def]
    orders = manage.buyer_orders(get_session(), _me())
    return render_template("orders/mine.html", orders=orders)


def _render_order(order: Order, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    user = _me()
    can = manage.order_actions(get_session(), user, order)
    code = manage.buyer_pickup_code(get_session(), user, order, pickup_code_keys())
    return render_template(
        "orders/order.html",
        order=order,
        subs=_with_actions(list(order.sub_orders)),
        is_owner=manage.is_buyer_of(user, order),
        payable=can.pay,
        cancellable=can.cancel,
        pay_url=url_for("cart.pay", number=order.number),
        place=places.division_chain(order.division),
        refunded_fen=sum(sub.refunded_fen for sub in order.sub_orders),
        pickup_code=code,
        journeys={sub.id: desk.journey(get_session(), user, sub) for sub in order.sub_orders},
        forms={"refund": RefundRequestForm(formdata=None)},
        error=error,
    ), status


@bp.get("/<order_number>")
@login_required
def order(order_number: str):  # type: ignore[no-untyped-def]
    return _render_order(manage.visible_order(get_session(), _me(), order_number))


@bp.post("/<order_number>/cancel")
@login_required
def cancel(order_number: str):  # type: ignore[no-untyped-def]
    """Cancel an unpaid order, from its page or the pay page (which sends `next` back to itself)."""
    session = get_session()
    form = ActionForm()
    try:
        found = manage.cancel_unpaid(session, payment_gateway(), _me(), order_number)
    except ServiceError as exc:
        reraise_access(exc)
        session.rollback()
        if form.next.data:
            # Sent from another page (the pay page): back there, with the reason on top.
            flash(str(exc.message), "error")
            return redirect(safe_next(form.next.data))
        found = manage.visible_order(session, _me(), order_number)
        return _render_order(found, error=str(exc.message), status=exc.status)
    flash(gettext("Order %(number)s is cancelled.", number=found.number), "success")
    return redirect(
        safe_next(form.next.data) if form.next.data else url_for(".order", order_number=found.number)
    )


@bp.post("/<order_number>/pickup-code")
@login_required
def new_pickup_code(order_number: str):  # type: ignore[no-untyped-def]
    """The buyer has a new pickup code issued and sent by SMS (unlocks a locked code)."""
    session = get_session()
    ActionForm()
    try:
        found = manage.new_pickup_code(session, _me(), order_number, pickup_code_keys())
    except ServiceError as exc:
        reraise_access(exc)
        session.rollback()
        found = manage.visible_order(session, _me(), order_number)
        return _render_order(found, error=str(exc.message), status=exc.status)
    flash(
        gettext("A new pickup code is shown below and sent by SMS; the old one no longer works."), "success"
    )
    return redirect(url_for(".order", order_number=found.number) + "#pickup-code")


# --- sellers ------------------------------------------------------------------------------------------


@bp.get("/sell")
@login_required
def sell():  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    status = request.args.get("status") or None
    farmers = catalog.farmers_of_agent(session, user) if catalog.agent_point_ids(user) else []
    is_seller = any(user.has_role(r) for r in catalog.SELLER_ROLES)
    farmer_id = query_id("farmer")  # a 404 for what is no id
    if farmer_id is None and not is_seller and farmers:
        farmer_id = farmers[0].farmer_id  # an agent fulfils for farmers, not for themselves
    subs = manage.seller_sub_orders(session, user, seller_id=farmer_id, status=status)
    seller = next((c.farmer for c in farmers if c.farmer_id == farmer_id), None)
    return render_template(
        "orders/sell.html",
        subs=_with_actions(subs),
        places_of={s.order.division_code: places.division_chain(s.order.division) for s in subs},
        farmers=farmers,
        farmer=farmer_id if farmer_id != user.id else None,
        seller=seller,
        is_seller=is_seller,
        status=status,
        filters=SELLER_FILTERS,
        decline_form=DeclineForm(formdata=None),
    )


# --- staff --------------------------------------------------------------------------------------------


@bp.get("/staff")
@login_required
def staff():  # type: ignore[no-untyped-def]
    status = request.args.get("status") or None
    subs = manage.staff_sub_orders(get_session(), _me(), status=status)
    return render_template(
        "orders/staff.html", subs=_with_actions(subs), status=status, filters=STAFF_FILTERS
    )


# --- one sub-order: its page and every action on it -----------------------------------------------------


def _render_sub(
    sub_number: str,
    *,
    error: str | None = None,
    forms: dict[str, Any] | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    sub, who = manage.visible_sub_order(session, user, sub_number)
    shown = {
        "decline": DeclineForm(formdata=None),
        "refund_request": RefundRequestForm(formdata=None),
        "refund": StaffRefundForm(formdata=None, data={"key": checkout.new_idempotency_key()}),
    }
    shown.update(forms or {})
    order_ = sub.order
    return render_template(
        "orders/sub.html",
        sub=sub,
        order=order_,
        acts=manage.sub_actions(session, user, sub, who),
        # The hand-in as received: weights, grades, what went back (seller, buyer, receiver).
        received=intake.visible_intake(session, user, sub),
        events=list(sub.events),
        journey=desk.journey(session, user, sub),
        label_url=url_for("scans.label_pdf", label=sub.number)
        if desk.label_printable(session, user, sub)
        else None,
        is_owner=manage.is_buyer_of(user, order_),
        place=places.division_chain(order_.division),
        forms=shown,
        error=error,
    ), status


def _failed(sub_number: str, exc: ServiceError, forms: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """A refused action: not found and forbidden get the error page; anything else (an illegal
    move, a bad reason or amount, the gateway down) the sub-order page with the reason."""
    reraise_access(exc)
    get_session().rollback()
    message: str | None = str(exc.message)
    for form in (forms or {}).values():
        if _put_errors(form, exc) is None:
            message = None  # every error stands next to its field
    return _render_sub(sub_number, error=message, forms=forms, status=exc.status)


def _put_errors(form: Any, exc: ServiceError) -> str | None:
    """The service's field errors on the form's fields (amount_fen → amount); None if all fit."""
    fitted = True
    for key, messages in exc.field_errors.items():
        name = {"amount_fen": "amount"}.get(key, key)
        target = getattr(form, name, None)
        if target is None or name in ("next", "key", "target"):
            fitted = False
            continue
        target.errors = [*target.errors, *(str(m) for m in messages)]
    return None if exc.field_errors and fitted else str(exc.message)


@bp.get("/sub/<sub_number>")
@login_required
def sub_order(sub_number: str):  # type: ignore[no-untyped-def]
    return _render_sub(sub_number)


@bp.post("/sub/<sub_number>/move")
@login_required
def move(sub_number: str):  # type: ignore[no-untyped-def]
    form = MoveForm()
    try:
        sub = manage.move(
            get_session(),
            _me(),
            sub_number,
            form.target.data or "",
            note=form.note.data or "",
            pickup_code=form.pickup_code.data or "",
            keys=pickup_code_keys(),
        )
    except ServiceError as exc:
        return _failed(sub_number, exc)
    _moved(sub)
    return _back(sub_number, form)


@bp.post("/sub/<sub_number>/decline")
@login_required
def decline(sub_number: str):  # type: ignore[no-untyped-def]
    form = DeclineForm()
    try:
        sub = manage.decline(get_session(), payment_gateway(), _me(), sub_number, form.reason.data or "")
    except ServiceError as exc:
        return _failed(sub_number, exc, {"decline": form})
    flash(
        gettext(
            "Order %(number)s is declined: %(status)s.",
            number=sub.number,
            status=order_status_label(sub.status),
        ),
        "success",
    )
    return _back(sub_number, form)


@bp.post("/sub/<sub_number>/ready")
@login_required
def ready(sub_number: str):  # type: ignore[no-untyped-def]
    form = ActionForm()
    try:
        sub = manage.mark_ready(get_session(), _me(), sub_number)
    except ServiceError as exc:
        return _failed(sub_number, exc)
    flash(gettext("Order %(number)s is packed: bring it to the service point.", number=sub.number), "success")
    return _back(sub_number, form)


@bp.post("/sub/<sub_number>/refund-request")
@login_required
def request_refund(sub_number: str):  # type: ignore[no-untyped-def]
    form = RefundRequestForm()
    try:
        sub = manage.request_refund(
            get_session(), payment_gateway(), _me(), sub_number, form.reason.data or ""
        )
    except ServiceError as exc:
        return _failed(sub_number, exc, {"refund_request": form})
    _moved(sub)
    return _back(sub_number, form)


def _units_sent() -> dict[int, int] | None:
    """The refund form's units-<line id> inputs: {line id: units} of those above 0, None when
    none is (a refund of an amount). Not a whole number: a field error on `units`."""
    units: dict[int, int] = {}
    for name, value in request.form.items():
        if name.startswith(UNITS_PREFIX) and value.strip():
            n = parse_int(value, "units", minimum=0, maximum=MAX_LINE_QUANTITY)
            if n:
                units[parse_id(name.removeprefix(UNITS_PREFIX), "units")] = n
    return units or None


@bp.post("/sub/<sub_number>/refund")
@login_required
def staff_refund(sub_number: str):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    manage.visible_sub_order(session, user, sub_number)  # someone else's: 404 before reading input
    form = StaffRefundForm()
    try:
        key = checkout.check_idempotency_key(form.key.data)
        text = (form.amount.data or "").strip()
        amount = catalog.parse_yuan(text, "amount") if text else None
        sub = manage.staff_refund(
            session,
            payment_gateway(),
            user,
            sub_number,
            amount,
            form.reason.data or "",
            key,
            units=_units_sent(),
        )
    except ServiceError as exc:
        if isinstance(exc, ValidationError) and "idempotency_key" in exc.field_errors:
            form.key.data = checkout.new_idempotency_key()
        return _failed(sub_number, exc, {"refund": form})
    flash(
        gettext(
            "Refunded: %(amount)s in all. Order %(number)s: %(status)s.",
            amount=money(sub.refunded_fen),
            number=sub.number,
            status=order_status_label(sub.status),
        ),
        "success",
    )
    return _back(sub_number, form)
