"""The 广货网上行 campaign pages (issue 13), three audiences in one blueprint:

- buyers: /campaigns (the campaigns announced and not over) and /campaigns/<id> (a campaign's
  landing page: its window in Beijing time with a countdown, its 满减 tiers and its approved
  products at the campaign price, the list price struck through);
- admins: /admin/campaigns (list, create, edit, publish, cancel, decide the sign-ups);
- sellers: /sell/campaigns (the open campaigns with a sign-up form each, their own sign-ups with
  a withdraw button); a village agent acts for a consenting farmer with ?farmer=<id>, as on the
  sell pages.

The services (services/campaigns) check who may do what and every value; the pages show their
field errors on the forms (422) and let refusals about access reach the error pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from domain import (
    Campaign,
    CampaignItem,
    CampaignState,
    Product,
    ProductStatus,
    SignupStatus,
    User,
    clock,
)
from marketplace.auth import actor
from marketplace.db import get_session
from marketplace.formatting import money
from marketplace.web.campaigns import bp
from marketplace.web.campaigns.forms import (
    CAMPAIGN_FIELDS,
    SIGNUP_FIELDS,
    CampaignForm,
    CancelForm,
    ConfirmForm,
    DecideForm,
    SignupForm,
    tiers_text,
)
from marketplace.web.forms import form_error, query_id, reraise_access
from marketplace.web.media.routes import media_url
from services import authz, catalog, media, places
from services.campaigns import manage, pricing
from services.errors import ServiceError, ValidationError

ON_SALE = (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT)


def _me() -> User:
    user = actor()
    assert user is not None  # login_required
    return user


def when_label(value: datetime) -> str:
    """ "12月1日 10:00:00": a moment of the window in Beijing time, to the second."""
    local = clock.local(value)
    return gettext(
        "%(month)d/%(day)d %(time)s", month=local.month, day=local.day, time=local.strftime("%H:%M:%S")
    )


def state_label(state: CampaignState) -> str:
    labels = {
        CampaignState.DRAFT: gettext("Draft"),
        CampaignState.SCHEDULED: gettext("Starting soon"),
        CampaignState.RUNNING: gettext("On now"),
        CampaignState.ENDED: gettext("Ended"),
        CampaignState.CANCELLED: gettext("Cancelled"),
    }
    return labels[state]


def signup_status_label(status: SignupStatus) -> str:
    labels = {
        SignupStatus.PENDING: gettext("Waiting for approval"),
        SignupStatus.APPROVED: gettext("Approved"),
        SignupStatus.REJECTED: gettext("Not approved"),
        SignupStatus.WITHDRAWN: gettext("Withdrawn"),
    }
    return labels[status]


def tiers_label(tiers: Any) -> str:
    """满100减20、满200减50 (the tiers in whole yuan where they are whole)."""
    return tiers_text(tiers).replace(", ", "、")


def banner_url(campaign: Campaign) -> str | None:
    """The banner's URL when its key is a stored picture's (services/media.py), else None."""
    key = campaign.banner_key or ""
    return media_url(key) if media.content_type_of(key) else None


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "campaign_when": when_label,
        "campaign_state_label": state_label,
        "signup_status_label": signup_status_label,
        "campaign_tiers": tiers_label,
        "campaign_banner_url": banner_url,
    }


# --- buyers: the campaigns and their landing pages ---------------------------------------------------


@bp.get("/campaigns")
def public_list():  # type: ignore[no-untyped-def]
    now = clock.now()
    campaigns = manage.public_campaigns(get_session(), now)
    return render_template("campaigns/list.html", campaigns=campaigns, now=now)


@bp.get("/campaigns/<int:campaign_id>")
def landing(campaign_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    now = clock.now()
    campaign = manage.public_campaign(session, campaign_id)  # 404 for a draft or cancelled one
    state = campaign.state(now)
    items = [i for i in manage.approved_items(session, campaign) if i.product.status in ON_SALE]
    products = [i.product for i in items]
    # The prices the products have now while it runs; before it starts, those of its first
    # second (a product is in one campaign at a time, so no other campaign is in them then).
    at = {CampaignState.RUNNING: now, CampaignState.SCHEDULED: campaign.starts_at}.get(state)
    shelf = pricing.shelf_prices(session, products, at) if at is not None else {}
    cards = [_card(item, shelf.get(item.product_id), campaign) for item in items]
    return render_template(
        "campaigns/landing.html",
        campaign=campaign,
        state=state,
        cards=cards,
        now=now,
    )


def _card(item: CampaignItem, price: pricing.ShelfPrice | None, campaign: Campaign) -> dict[str, Any]:
    product = item.product
    own = price if price is not None and price.campaign_id == campaign.id else None
    return {
        "product": product,
        "photo": product.photos[0] if product.photos else None,
        "list_fen": product.price_fen,
        "price_fen": own.price_fen if own else None,
        "discounted": bool(own and own.discounted),
        "sold_out": bool(own.sold_out if own else item.sold_out),
    }


# --- admins -----------------------------------------------------------------------------------------


def _admin() -> User:
    return authz.require_campaigns(actor())  # 403 for anyone else, before anything is read


def _campaign_form(form: CampaignForm | None = None) -> CampaignForm:
    form = form or CampaignForm()
    session = get_session()
    form.set_choices(places.counties_by_city(session), catalog.category_groups(session))
    return form


@bp.get("/admin/campaigns")
@login_required
def admin_list():  # type: ignore[no-untyped-def]
    campaigns = manage.list_campaigns(get_session(), actor())
    return render_template("campaigns/admin_list.html", campaigns=campaigns, now=clock.now())


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    user = _admin()
    form = _campaign_form()
    error = None
    status = 200
    if request.method == "POST":
        try:
            campaign = manage.create_campaign(get_session(), user, form.campaign_input())
        except ServiceError as exc:
            error, status = form_error(form, exc, renamed=CAMPAIGN_FIELDS)
        else:
            flash(gettext("The campaign %(name)s is saved as a draft.", name=campaign.name), "success")
            return redirect(url_for(".admin_detail", campaign_id=campaign.id))
    return render_template("campaigns/admin_form.html", form=form, campaign=None, error=error), status


@bp.route("/admin/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def edit(campaign_id: int):  # type: ignore[no-untyped-def]
    user = _admin()
    session = get_session()
    campaign = manage.get_campaign(session, campaign_id)
    form = _campaign_form()
    error = None
    status = 200
    if request.method == "GET":
        form.fill_from(campaign)
    else:
        try:
            manage.update_campaign(session, user, campaign_id, form.campaign_input())
        except ServiceError as exc:
            error, status = form_error(form, exc, renamed=CAMPAIGN_FIELDS)
        else:
            flash(gettext("Saved."), "success")
            return redirect(url_for(".admin_detail", campaign_id=campaign_id))
    return render_template(
        "campaigns/admin_form.html",
        form=form,
        campaign=campaign,
        state=campaign.state(clock.now()),
        error=error,
    ), status


def _render_detail(
    campaign: Campaign,
    *,
    cancel_form: CancelForm | None = None,
    failed: tuple[int, DecideForm] | None = None,
    error: str | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    get_session().refresh(campaign, attribute_names=["items"])  # sign-ups made since it was loaded
    items = sorted(campaign.items, key=lambda i: (i.status != SignupStatus.PENDING, -i.id))
    forms = {i.id: DecideForm(formdata=None) for i in items}
    if failed is not None:
        forms[failed[0]] = failed[1]
    return render_template(
        "campaigns/admin_detail.html",
        campaign=campaign,
        state=campaign.state(clock.now()),
        items=items,
        forms=forms,
        cancel_form=cancel_form or CancelForm(formdata=None),
        confirm=ConfirmForm(),
        error=error,
    ), status


@bp.get("/admin/campaigns/<int:campaign_id>")
@login_required
def admin_detail(campaign_id: int):  # type: ignore[no-untyped-def]
    _admin()
    return _render_detail(manage.get_campaign(get_session(), campaign_id))


@bp.post("/admin/campaigns/<int:campaign_id>/publish")
@login_required
def publish(campaign_id: int):  # type: ignore[no-untyped-def]
    user = _admin()
    session = get_session()
    try:
        campaign = manage.publish(session, user, campaign_id)
    except ServiceError as exc:
        reraise_access(exc)
        message = " ".join(str(m) for msgs in exc.field_errors.values() for m in msgs) or str(exc.message)
        return _render_detail(manage.get_campaign(session, campaign_id), error=message, status=exc.status)
    flash(gettext("%(name)s is published: sellers can sign up.", name=campaign.name), "success")
    return redirect(url_for(".admin_detail", campaign_id=campaign_id))


@bp.post("/admin/campaigns/<int:campaign_id>/cancel")
@login_required
def cancel(campaign_id: int):  # type: ignore[no-untyped-def]
    user = _admin()
    session = get_session()
    form = CancelForm()
    try:
        campaign = manage.cancel(session, user, campaign_id, form.reason.data or "")
    except ServiceError as exc:
        error, status = form_error(form, exc)
        return _render_detail(
            manage.get_campaign(session, campaign_id), cancel_form=form, error=error, status=status
        )
    flash(gettext("%(name)s is cancelled.", name=campaign.name), "success")
    return redirect(url_for(".admin_detail", campaign_id=campaign_id))


@bp.post("/admin/campaigns/signups/<int:item_id>/decide")
@login_required
def decide(item_id: int):  # type: ignore[no-untyped-def]
    user = _admin()
    session = get_session()
    form = DecideForm()
    decision = form.decision.data
    try:
        if decision not in ("approve", "reject"):
            raise ValidationError(gettext("Approve or reject the sign-up."))
        item = manage.decide(session, user, item_id, decision == "approve", form.reason.data or "")
    except ServiceError as exc:
        reraise_access(exc)
        found = session.get(CampaignItem, item_id)
        if found is None:
            raise
        error, status = form_error(form, exc, renamed=SIGNUP_FIELDS)
        if error is None and "reason" not in exc.field_errors:
            error = " ".join(str(m) for msgs in exc.field_errors.values() for m in msgs)
        form.form_errors.append(error or "")
        return _render_detail(found.campaign, failed=(item_id, form), status=status)
    if item.status == SignupStatus.APPROVED:
        flash(gettext("%(name)s is approved.", name=item.product.name), "success")
    else:
        flash(gettext("%(name)s is rejected.", name=item.product.name), "success")
    return redirect(url_for(".admin_detail", campaign_id=item.campaign_id) + f"#s{item.id}")


# --- sellers (and agents for consenting farmers) ---------------------------------------------------------


def _selling() -> tuple[catalog.SellingAs | None, list[Any]]:
    """Whose sign-ups the page shows, and the farmers an agent may choose from. An agent who is no
    seller and named no farmer gets the chooser only (selling is None)."""
    session = get_session()
    user = _me()
    farmer_id = query_id("farmer")
    agent = bool(catalog.agent_point_ids(user))
    farmers = catalog.farmers_of_agent(session, user) if agent else []
    is_seller = any(user.has_role(r) for r in catalog.SELLER_ROLES)
    if farmer_id is None and not is_seller and agent:
        return None, farmers
    return catalog.selling_as(session, user, farmer_id), farmers


def _eligible(
    session: Any, user: User, campaign: Campaign, products: Sequence[Product], taken: set[tuple[int, int]]
) -> list[Product]:
    """The products that may be signed up to the campaign: on sale, in its scope, not in it yet
    (`taken`: (campaign id, product id) of the seller's pending and approved sign-ups)."""
    return [
        p
        for p in products
        if p.status in ON_SALE
        and (campaign.id, p.id) not in taken
        and manage.in_scope(campaign, p)
        and manage.may_sign_up(session, user, p)
    ]


def signup_prefix(campaign_id: int) -> str:
    """Each campaign's sign-up form on the page has its own field names and ids."""
    return f"c{campaign_id}-"


def _render_seller(
    selling: catalog.SellingAs | None,
    farmers: list[Any],
    *,
    failed: tuple[int, SignupForm] | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    now = clock.now()
    offers: list[dict[str, Any]] = []
    items: list[CampaignItem] = []
    farmer = None
    if selling is not None:
        farmer = selling.seller.id if selling.seller.id != user.id else None
        products = catalog.listings_of(session, user, seller_id=selling.seller.id)
        items = manage.seller_items(session, user, selling.seller.id)
        taken = {
            (i.campaign_id, i.product_id)
            for i in items
            if i.status in (SignupStatus.PENDING, SignupStatus.APPROVED)
        }
        for campaign in manage.public_campaigns(session, now):
            eligible = _eligible(session, user, campaign, products, taken)
            form = SignupForm(formdata=None, prefix=signup_prefix(campaign.id))
            if failed is not None and failed[0] == campaign.id:
                form = failed[1]
            form.product_id.choices = [  # type: ignore[assignment]
                (str(p.id), f"{p.name} · {money(p.price_fen)}") for p in eligible
            ]
            offers.append(
                {"campaign": campaign, "state": campaign.state(now), "form": form, "eligible": eligible}
            )
    return render_template(
        "campaigns/seller.html",
        selling=selling,
        farmers=farmers,
        farmer=farmer,
        offers=offers,
        items=items,
        now=now,
        confirm=ConfirmForm(),
    ), status


@bp.get("/sell/campaigns")
@login_required
def seller():  # type: ignore[no-untyped-def]
    selling, farmers = _selling()
    if selling is not None and selling.profile is None:
        return redirect(url_for("sell.profile", next=request.full_path))
    return _render_seller(selling, farmers)


def _seller_url(farmer: int | None, anchor: str = "") -> str:
    return url_for(".seller", farmer=farmer) + anchor


@bp.post("/sell/campaigns/<int:campaign_id>/sign-up")
@login_required
def sign_up(campaign_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    form = SignupForm(prefix=signup_prefix(campaign_id))
    try:
        item = manage.sign_up(session, user, campaign_id, form.product_id.data or "", form.signup_input())
    except ServiceError as exc:
        reraise_access(exc)
        _error, status = form_error(form, exc, renamed=SIGNUP_FIELDS)
        if _error:
            form.form_errors.append(_error)
        selling, farmers = _selling()
        return _render_seller(selling, farmers, failed=(campaign_id, form), status=status)
    flash(
        gettext(
            "%(name)s is signed up to %(campaign)s.", name=item.product.name, campaign=item.campaign.name
        ),
        "success",
    )
    farmer = item.seller_id if item.seller_id != user.id else None
    return redirect(_seller_url(farmer, f"#s{item.id}"))


@bp.post("/sell/campaigns/signups/<int:item_id>/withdraw")
@login_required
def withdraw(item_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _me()
    try:
        item = manage.withdraw(session, user, item_id)
    except ServiceError as exc:
        reraise_access(exc)
        flash(str(exc.message), "error")
        found = session.get(CampaignItem, item_id)
        farmer = found.seller_id if found is not None and found.seller_id != user.id else None
        return redirect(_seller_url(farmer))
    flash(gettext("%(name)s is withdrawn.", name=item.product.name), "success")
    farmer = item.seller_id if item.seller_id != user.id else None
    return redirect(_seller_url(farmer, f"#s{item.id}"))
