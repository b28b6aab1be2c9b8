"""The sell pages: "my listings" (one-tap price and stock, pause and resume), the seller profile,
a new listing in three short steps (what; price and stock; photos), editing with the change
history, and for village agents the farmers they list for (托管代运营, ?farmer=<id>).

Every page works without JavaScript: plain forms, state in hidden fields and in the draft."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import ProductStatus, Role, SellerKind, User
from marketplace.auth import actor, auth_policy, client_ip
from marketplace.db import get_session
from marketplace.extensions import csrf
from marketplace.formatting import money
from marketplace.gateways import media_storage, sms_gateway
from marketplace.web.auth.routes import sms_code_limit
from marketplace.web.forms import form_error, form_status, query_id, reraise_access, safe_next
from marketplace.web.sell import bp
from marketplace.web.sell.forms import (
    FORM_FIELD,
    SERVICE_FIELD,
    STEP_FIELDS,
    ConfirmForm,
    EnrollFarmerForm,
    ListingForm,
    PriceStockForm,
    SellerProfileForm,
    StatusForm,
    yuan_text,
)
from services import catalog, media, places
from services.errors import ServiceError, ValidationError

KEY_RE = re.compile(r"^[0-9a-f]{32}$", re.ASCII)
PICKER_PARAMS = tuple(level.value for level in places.VILLAGE_PICKER_LEVELS)


def _me() -> User:
    user = actor()
    assert user is not None  # login_required
    return user


def _farmer_arg() -> int | None:
    return query_id("farmer")


def _farmer_param(user: User, seller_id: int) -> int | None:
    """The ?farmer= an agent's pages carry; None on one's own pages."""
    return seller_id if seller_id != user.id else None


def _listings_url(user: User, seller_id: int, product_id: int | None = None) -> str:
    url = url_for("sell.listings", farmer=_farmer_param(user, seller_id))
    return url + (f"#p{product_id}" if product_id else "")


def _is_seller(user: User) -> bool:
    return any(user.has_role(r) for r in catalog.SELLER_ROLES)


# --- my listings ---------------------------------------------------------------------------------


def _render_listings(
    selling: catalog.SellingAs,
    *,
    failed: tuple[int, PriceStockForm] | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    products = catalog.listings_of(session, user, seller_id=selling.seller.id)
    forms = {
        p.id: PriceStockForm(formdata=None, data={"price": yuan_text(p.price_fen), "stock": str(p.stock)})
        for p in products
    }
    if failed is not None:
        forms[failed[0]] = failed[1]
    farmers = catalog.farmers_of_agent(session, user) if catalog.agent_point_ids(user) else []
    return render_template(
        "sell/listings.html",
        selling=selling,
        products=products,
        forms=forms,
        farmers=farmers,
        is_seller=_is_seller(user),
        farmer=_farmer_param(user, selling.seller.id),
    ), status


@bp.get("/")
@login_required
def listings():  # type: ignore[no-untyped-def]
    user = _me()
    farmer_id = _farmer_arg()
    if farmer_id is None and not _is_seller(user) and catalog.agent_point_ids(user):
        return redirect(url_for(".farmers"))  # an agent lists for farmers, not for themselves
    selling = catalog.selling_as(get_session(), user, farmer_id)
    if selling.profile is None:
        return redirect(url_for(".profile", next=request.full_path))
    return _render_listings(selling)


@bp.post("/<int:product_id>/price-stock")
@login_required
def price_stock(product_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    product = catalog.get_product(session, product_id)
    catalog.require_editor(session, user, product)  # refused before the input is even read
    # The one-tap form lives on "my listings", which its seller and their agent use (admins
    # moderate on the edit page): the same answer whether or not the values are valid.
    selling = catalog.selling_as(session, user, product.seller_id)
    form = PriceStockForm()
    errors: dict[str, list[Any]] = {}
    values: dict[str, int] = {}
    for field, parse, key in (
        ("price", catalog.parse_yuan, "price_fen"),
        ("stock", catalog.parse_count, "stock"),
    ):
        try:
            values[key] = parse(form[field].data)
        except ValidationError as exc:
            errors[field] = list(exc.field_errors.get(key) or [exc.message])
    if not errors:
        try:
            product = catalog.set_price_and_stock(session, user, product_id, **values)
        except ServiceError as exc:
            reraise_access(exc)
            errors = {FORM_FIELD.get(k, k): v for k, v in exc.field_errors.items()} or {
                "price": [exc.message]
            }
        else:
            flash(
                gettext(
                    "Saved: %(name)s, %(price)s, %(n)d in stock.",
                    name=product.name,
                    price=money(product.price_fen),
                    n=product.stock,
                ),
                "success",
            )
            return redirect(_listings_url(user, product.seller_id, product.id))
    for field, messages in errors.items():
        form[field].errors = [str(m) for m in messages]
    return _render_listings(selling, failed=(product_id, form), status=422)


@bp.post("/<int:product_id>/status")
@login_required
def change_status(product_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    product = catalog.get_product(session, product_id)
    form = StatusForm()
    fallback = _listings_url(user, product.seller_id, product.id)
    target = safe_next(form.next.data) if form.next.data else fallback
    try:
        product = catalog.set_status(session, user, product_id, form.status.data or "")  # type: ignore[arg-type]
    except ServiceError as exc:
        reraise_access(exc)
        flash(
            " ".join(str(m) for msgs in exc.field_errors.values() for m in msgs) or str(exc.message), "error"
        )
    else:
        if product.status == ProductStatus.PAUSED:
            flash(gettext("%(name)s is paused: buyers no longer see it.", name=product.name), "success")
        elif product.status == ProductStatus.ACTIVE:
            flash(gettext("%(name)s is on sale.", name=product.name), "success")
    return redirect(target)


# --- seller profile ------------------------------------------------------------------------------


def _kind_choices(user: User) -> list[tuple[str, Any]]:
    choices = []
    if user.has_role(Role.FARMER):
        choices += [
            (SellerKind.FARMER.value, gettext("A farmer (my own produce)")),
            (SellerKind.COOPERATIVE.value, gettext("A cooperative")),
        ]
    if user.has_role(Role.MERCHANT):
        choices.append((SellerKind.MERCHANT.value, gettext("A merchant (farm inputs and daily goods)")))
    return choices


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    current = catalog.selling_as(session, user).profile  # 403 unless a farmer or merchant
    if request.method == "POST":
        form = SellerProfileForm()
        selection = {k: request.form.get(k, "") for k in PICKER_PARAMS}
    else:
        form = SellerProfileForm(
            data={
                "kind": current.kind.value if current else None,
                "shop_name": catalog.seller_name(user, current.shop_name if current else None),
                "intro": current.intro if current else "",
                "next": request.args.get("next", ""),
            }
        )
        selection = places.picker_selection(current.division_code if current else "")
    form.kind.choices = _kind_choices(user)  # type: ignore[assignment]
    if form.kind.data not in {c[0] for c in form.kind.choices}:  # type: ignore[union-attr]
        form.kind.data = form.kind.choices[0][0]  # type: ignore[index]
    picker = places.village_picker(session, selection)
    error = None
    place_errors: list[str] = []
    status = 200
    if request.method == "POST" and request.form.get("action") == "save":
        try:
            catalog.save_seller_profile(
                session,
                user,
                shop_name=form.shop_name.data or "",
                division_code=picker.code,
                intro=form.intro.data or "",
                kind=SellerKind(form.kind.data),
            )
        except ServiceError as exc:
            place_errors = [str(m) for m in exc.field_errors.pop("division_code", [])]
            shown, status = form_error(form, exc)
            if exc.field_errors or not place_errors:
                error = shown
        else:
            flash(gettext("Your seller profile is saved."), "success")
            return redirect(safe_next(form.next.data, "sell.listings"))
    elif request.method == "POST":
        status = 200  # "next" in the village picker: nothing is saved yet
    return render_template(
        "sell/profile.html",
        form=form,
        picker=picker,
        place_errors=place_errors,
        error=error,
        profile=current,
        consents=catalog.consents_of_farmer(session, user),
    ), status


# --- a new listing in three steps -----------------------------------------------------------------


def _check(
    form: ListingForm, user: User, seller_id: int, fields: Iterable[str], origin_code: str | None = None
) -> bool:
    """Put every error of these fields on the form: unparsable text, then the services' rules."""
    session = get_session()
    fields = set(fields)
    form.validate()
    relevant = {FORM_FIELD.get(f, f) for f in fields} | {"weight_unit"}
    bad = {name for name in relevant if name in form and form[name].errors}
    for name in set(form._fields) - relevant:
        form[name].errors = []  # a hidden value of another step is checked in its step
    data, parse_errors = form.listing_input()
    parse_errors = {k: v for k, v in parse_errors.items() if k in fields}
    for key, messages in parse_errors.items():
        field = form[FORM_FIELD.get(key, key)]
        field.errors = [*field.errors, *(str(m) for m in messages)]
    wanted = fields - set(parse_errors) - {SERVICE_FIELD.get(n, n) for n in bad}
    try:
        data = dataclasses.replace(data, origin_code=origin_code)
        catalog.validate_listing(session, user, data, seller_id=seller_id, fields=wanted)
    except ServiceError as exc:
        form.form_errors.append(form_error(form, exc, renamed=FORM_FIELD)[0] or "")
        return False
    return not bad and not parse_errors


def _form_error(form: ListingForm) -> str | None:
    return " ".join(m for m in form.form_errors if m) or None


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new_listing():  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    selling = catalog.selling_as(session, user, _farmer_arg())
    if selling.profile is None:
        return redirect(url_for(".profile", next=request.full_path))
    form = ListingForm()
    if request.method == "GET" or not KEY_RE.match(form.key.data or ""):
        # One key per form: a double tap or a resent step 2 finds the draft it already made.
        form.key.data = uuid.uuid4().hex
    step = 1
    status = 200
    if request.method == "POST":
        sent = 2 if form.step.data == "2" else 1
        if sent == 2 and "back" in request.form:
            step = 1
        elif sent == 1:
            step = 2 if _check(form, user, selling.seller.id, STEP_FIELDS[1]) else 1
            status = 200 if step == 2 else 422
        else:
            everything = (*STEP_FIELDS[1], *STEP_FIELDS[2])
            if _check(form, user, selling.seller.id, everything):
                data, _errors = form.listing_input()
                try:
                    product = catalog.save_draft(
                        session, user, data, seller_id=selling.seller.id, idempotency_key=form.key.data
                    )
                except ServiceError as exc:
                    shown, status = form_error(form, exc, renamed=FORM_FIELD)
                    form.form_errors.append(shown or "")
                else:
                    return redirect(url_for(".photos", product_id=product.id, new=1))
            else:
                status = 422
            first_step_bad = any(
                form[FORM_FIELD.get(f, f)].errors for f in STEP_FIELDS[1] if FORM_FIELD.get(f, f) in form
            )
            step = 1 if first_step_bad else 2
    return render_template(
        "sell/new.html",
        form=form,
        step=step,
        groups=catalog.category_groups(session, catalog.flow_of(selling.profile.kind)),
        selling=selling,
        error=_form_error(form),
        farmer=_farmer_param(user, selling.seller.id),
    ), status


# --- photos (step 3 of a new listing, or later) ---------------------------------------------------


@bp.route("/<int:product_id>/photos", methods=["GET", "POST"])
@login_required
@csrf.exempt  # checked below, once the request limit has been raised to fit a photo
def photos(product_id: int):  # type: ignore[no-untyped-def]
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    # Room for a photo up to twice the limit, so that a too large one gets the clear message of
    # the service rather than the generic "upload too large" page.
    request.max_content_length = max(current_app.config.get("MAX_CONTENT_LENGTH") or 0, 2 * limit + 65536)
    if request.method == "POST" and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    session = get_session()
    user = _me()
    product = catalog.get_product(session, product_id)
    catalog.require_editor(session, user, product)
    error = None
    status = 200
    if request.method == "POST":
        upload = next((f for f in request.files.getlist("photo") if f and f.filename), None)
        data = upload.read(limit + 1) if upload is not None else b""
        try:
            media.add_photo(session, media_storage(), user, product_id, data, max_bytes=limit)
        except ServiceError as exc:
            reraise_access(exc)
            error = " ".join(str(m) for m in exc.field_errors.get("photo", [])) or str(exc.message)
            status = form_status(exc)
        else:
            flash(gettext("The photo is added."), "success")
            return redirect(url_for(".photos", product_id=product_id, new=request.args.get("new")))
    return render_template(
        "sell/photos.html",
        product=product,
        new=bool(request.args.get("new")) and product.status == ProductStatus.DRAFT,
        error=error,
        max_photos=media.MAX_PHOTOS,
        max_mb=limit // media.MB,
        farmer=_farmer_param(user, product.seller_id),
        listings_url=_listings_url(user, product.seller_id, product.id),
    ), status


@bp.post("/<int:product_id>/photos/<int:photo_id>/remove")
@login_required
def remove_photo(product_id: int, photo_id: int):  # type: ignore[no-untyped-def]
    media.remove_photo(get_session(), media_storage(), actor(), product_id, photo_id)
    flash(gettext("The photo is removed."), "success")
    return redirect(url_for(".photos", product_id=product_id, new=request.args.get("new")))


@bp.post("/<int:product_id>/photos/<int:photo_id>/main")
@login_required
def main_photo(product_id: int, photo_id: int):  # type: ignore[no-untyped-def]
    media.move_photo(get_session(), actor(), product_id, photo_id, 0)
    flash(gettext("Buyers now see this photo first."), "success")
    return redirect(url_for(".photos", product_id=product_id, new=request.args.get("new")))


# --- edit a listing --------------------------------------------------------------------------------


@bp.route("/<int:product_id>/edit", methods=["GET", "POST"])
@login_required
def edit(product_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    product = catalog.get_product(session, product_id)
    catalog.require_editor(session, user, product)
    seller = catalog.get_seller_profile(session, product.seller_id)
    form = ListingForm()
    status = 200
    if request.method == "GET":
        form.fill_from(product)
    else:
        everything = (*STEP_FIELDS[1], *STEP_FIELDS[2])
        # The origin is not on the form: it stays what it is.
        if _check(form, user, product.seller_id, everything, product.origin_code):
            data, _errors = form.listing_input()
            try:
                data = dataclasses.replace(data, origin_code=product.origin_code)
                catalog.update_product(session, user, product_id, data)
            except ServiceError as exc:
                shown, status = form_error(form, exc, renamed=FORM_FIELD)
                form.form_errors.append(shown or "")
            else:
                flash(gettext("Saved."), "success")
                return redirect(url_for(".edit", product_id=product_id))
        else:
            status = 422
    return render_template(
        "sell/edit.html",
        form=form,
        product=product,
        seller=seller,
        groups=catalog.category_groups(session, catalog.flow_of(seller.kind)),
        history=catalog.listing_history(session, user, product_id),
        error=_form_error(form),
        farmer=_farmer_param(user, product.seller_id),
        listings_url=_listings_url(user, product.seller_id, product.id),
    ), status


# --- village agents: the farmers they list for ----------------------------------------------------


@bp.route("/farmers", methods=["GET", "POST"])
@login_required
@sms_code_limit
def farmers():  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    consents = catalog.farmers_of_agent(session, user)  # 403 for anyone but village agents
    groups = places.enrollment_villages(session, user)
    form = EnrollFarmerForm()
    form.village_code.choices = [("", gettext("— choose —"))] + [  # type: ignore[assignment]
        (d.code, d.short_name) for g in groups for d in g.villages
    ]
    step = 2 if request.form.get("step") == "2" else 1
    notice = error = None
    status = 200
    if request.method == "POST":
        if form.send_code.data:
            if form.phone.validate(form):
                try:
                    phone = catalog.request_consent_code(
                        session, sms_gateway(), user, form.phone.data, auth_policy(), ip=client_ip()
                    )
                except ServiceError as exc:
                    error, status = form_error(form, exc)
                else:
                    minutes = max(1, current_app.config["SMS_CODE_TTL_SECONDS"] // 60)
                    notice = gettext(
                        "We sent a 6-digit code to %(phone)s. If the farmer agrees that you list for "
                        "them, they read it out to you. It is valid for %(n)d minutes.",
                        phone=phone,
                        n=minutes,
                    )
                    form.phone.data = phone
                    step = 2
            else:
                status = 422
        else:
            step = 2
            if form.validate():
                village = form.village_code.data or ""
                try:
                    consent = catalog.enroll_farmer(
                        session,
                        user,
                        phone=form.phone.data,
                        code=form.code.data,
                        display_name=form.display_name.data,
                        village_code=village,
                        point_id=places.enrollment_point(groups, village),
                        policy=auth_policy(),
                    )
                except ServiceError as exc:
                    error, status = form_error(form, exc, reraise=(401, 404))
                else:
                    flash(
                        gettext(
                            "%(name)s is enrolled: you can now list products for them.",
                            name=consent.farmer.display_name,
                        ),
                        "success",
                    )
                    return redirect(url_for(".farmers") + f"#f{consent.farmer_id}")
            else:
                status = 422
    return render_template(
        "sell/farmers.html",
        consents=consents,
        groups=groups,
        form=form,
        step=step,
        notice=notice,
        error=error,
        dev_outbox=current_app.config.get("DEV_PAGES"),
    ), status


@bp.post("/consents/<int:consent_id>/revoke")
@login_required
def revoke_consent(consent_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    catalog.revoke_consent(get_session(), actor(), consent_id)
    flash(gettext("The consent has ended: the agent can no longer list for the farmer."), "success")
    return redirect(safe_next(form.next.data, "sell.profile"))
