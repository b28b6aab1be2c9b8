"""Account pages: register and reset by SMS code, log in and out, profile, users and roles."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from flask_login import login_required

from domain import DivisionLevel, NodeKind, Role, SmsPurpose, User
from marketplace.auth import actor, auth_policy, client_ip, device_token, end_login, start_login
from marketplace.db import get_session
from marketplace.extensions import limiter
from marketplace.formatting import role_label
from marketplace.gateways import sms_gateway
from marketplace.web.auth import bp
from marketplace.web.auth.forms import (
    GrantRoleForm,
    LoginForm,
    NotificationsForm,
    ProfileForm,
    RegisterForm,
    ResetPasswordForm,
    RevokeRoleForm,
    UserSearchForm,
)
from marketplace.web.cart.guest import merge_guest_cart
from marketplace.web.forms import form_error, reraise_access, safe_next
from services import accounts, notify, places
from services.errors import ServiceError, ValidationError
from services.validation import mask_phone

# Shared with the API (same scope string): one budget per IP for login attempts, one for SMS codes.
LOGIN_LIMIT_SCOPE = "login"
SMS_LIMIT_SCOPE = "sms-codes"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _sms_limit() -> str:
    return current_app.config["SMS_RATE_LIMIT"]


def _not_sending_code() -> bool:
    # Only the "send code" button costs an SMS; finishing the form does not count.
    return "send_code" not in request.form


login_limit = limiter.shared_limit(_login_limit, LOGIN_LIMIT_SCOPE, methods=["POST"])
sms_code_limit = limiter.shared_limit(
    _sms_limit, SMS_LIMIT_SCOPE, methods=["POST"], exempt_when=_not_sending_code
)


def _code_sent(purpose: SmsPurpose, phone: str) -> str:
    # Both purposes: the same words whether or not the number has an account (a registered
    # number asking to register gets a text saying so, never a different page).
    minutes = max(1, current_app.config["SMS_CODE_TTL_SECONDS"] // 60)
    if purpose == SmsPurpose.RESET_PASSWORD:
        return gettext(
            "If %(phone)s has an account, a 6-digit code is on its way. It is valid for %(n)d minutes.",
            phone=phone,
            n=minutes,
        )
    return gettext(
        "We sent a 6-digit code to %(phone)s. It is valid for %(n)d minutes.", phone=phone, n=minutes
    )


def _send_code(
    form: RegisterForm | ResetPasswordForm, purpose: SmsPurpose
) -> tuple[str | None, str | None, int]:
    """Handle a "send code" press: (notice, error, status)."""
    if not form.phone.validate(form):
        return None, None, 422
    try:
        accounts.request_sms_code(
            get_session(), sms_gateway(), form.phone.data, purpose, auth_policy(), ip=client_ip()
        )
    except ServiceError as exc:
        error, status = form_error(form, exc, reraise=())
        return None, error, status
    return _code_sent(purpose, form.phone.data.strip()), None, 200


# --- log in and out ------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@login_limit
def login():  # type: ignore[no-untyped-def]
    if actor() is not None:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                user = accounts.authenticate(
                    get_session(),
                    form.phone.data,
                    form.password.data,
                    auth_policy(),
                    device_token=device_token(),
                )
            except ServiceError as exc:
                error, status = form_error(form, exc, reraise=())
            else:
                start_login(user, remember=bool(form.remember.data))
                merge_guest_cart(user)  # what they put in the cart as a guest stays there
                return redirect(safe_next(request.args.get("next")))
        else:
            status = 422
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        # A link (or a typed address) must not log anyone out: GET only asks, POST with CSRF does it.
        if actor() is None:
            return redirect(url_for("main.home"))
        return render_template("auth/logout.html")
    end_login()  # the session ends on the server: copies of its cookies stop working too
    flash(gettext("You have logged out."), "info")
    return redirect(url_for("main.home"))


# --- registration and password reset by SMS code ----------------------------------------------


def _code_then_form(
    form: RegisterForm | ResetPasswordForm,
    purpose: SmsPurpose,
    template: str,
    finish,  # type: ignore[no-untyped-def]
    done_message: str,
):
    """One page in two steps: "send code" (step 1, or again in step 2), then the form itself.

    `finish(form)` calls the service that uses up the code and returns the user to log in.
    """
    step = 2 if request.form.get("step") == "2" else 1
    notice = error = None
    status = 200
    if request.method == "POST":
        if form.send_code.data:
            notice, error, status = _send_code(form, purpose)
            if notice and step == 1 and isinstance(form, RegisterForm):
                form.role_buyer.data = True  # step 1 has no checkboxes: start from the default
            if notice:
                step = 2
        else:
            step = 2
            if form.validate():
                try:
                    user = finish(form)
                except ServiceError as exc:
                    error, status = form_error(form, exc, reraise=())
                else:
                    start_login(user)
                    flash(done_message, "info")
                    return redirect(url_for("main.workspace_index"))
            else:
                status = 422
    return render_template(
        template,
        form=form,
        step=step,
        notice=notice,
        error=error,
        dev_outbox=current_app.config.get("DEV_PAGES"),
    ), status


@bp.route("/register", methods=["GET", "POST"])
@sms_code_limit
def register():  # type: ignore[no-untyped-def]
    if actor() is not None:
        return redirect(url_for("main.workspace_index"))

    def finish(form: RegisterForm) -> User:
        return accounts.register(
            get_session(),
            phone=form.phone.data,
            code=form.code.data,
            password=form.password.data,
            display_name=form.display_name.data or "",
            roles=form.chosen_roles(),
            locale=str(get_locale() or "") or None,
            policy=auth_policy(),
        )

    return _code_then_form(
        RegisterForm(),
        SmsPurpose.REGISTER,
        "auth/register.html",
        finish,
        gettext("Welcome! Your account is ready."),
    )


@bp.route("/reset", methods=["GET", "POST"])
@sms_code_limit
def reset_password():  # type: ignore[no-untyped-def]
    def finish(form: ResetPasswordForm) -> User:
        # Every session ends; this browser starts a new one under the new password.
        return accounts.reset_password(
            get_session(),
            phone=form.phone.data,
            code=form.code.data,
            new_password=form.password.data,
            policy=auth_policy(),
        )

    return _code_then_form(
        ResetPasswordForm(),
        SmsPurpose.RESET_PASSWORD,
        "auth/reset.html",
        finish,
        gettext("Your password has been changed."),
    )


# --- profile -------------------------------------------------------------------------------------


@bp.route("/me", methods=["GET", "POST"])
@login_required
def profile():  # type: ignore[no-untyped-def]
    user = actor()
    assert user is not None  # login_required
    if request.method == "POST":
        form = ProfileForm()
    else:
        form = ProfileForm(data={"display_name": user.display_name, "locale": user.locale or ""})
    error = None
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                accounts.update_profile(
                    get_session(), user, display_name=form.display_name.data or "", locale=form.locale.data
                )
            except ServiceError as exc:
                error, status = form_error(form, exc, reraise=())
            else:
                # The language chosen here wins over an earlier choice in the footer.
                if form.locale.data:
                    session["lang"] = form.locale.data
                else:
                    session.pop("lang", None)
                flash(gettext("Saved."), "info")
                return redirect(url_for("auth.profile"))
        else:
            status = 422
    return _render_profile(user, form, error=error, status=status)


def _render_profile(user: User, form: ProfileForm, *, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template(
        "auth/profile.html",
        user=user,
        form=form,
        error=error,
        notifications=notify.preferences(get_session(), user),
        notifications_form=NotificationsForm(formdata=None),
    ), status


@bp.post("/me/notifications")
@login_required
def notifications():  # type: ignore[no-untyped-def]
    """Turn the optional order messages on or off (the essential ones always go)."""
    user = actor()
    assert user is not None  # login_required
    form = NotificationsForm()
    try:
        notify.set_preferences(get_session(), user, form.events.data or [])
    except ServiceError as exc:
        reraise_access(exc)
        get_session().rollback()
        profile_form = ProfileForm(data={"display_name": user.display_name, "locale": user.locale or ""})
        return _render_profile(user, profile_form, error=str(exc.message), status=exc.status)
    flash(gettext("Saved."), "info")
    return redirect(url_for("auth.profile") + "#notifications")


# --- users and roles (admins, county staff) -----------------------------------------------------


def _grant_form_choices(form: GrantRoleForm, users: list[User], me: User | None) -> bool:
    """Fill the grant form's selects with what this actor may grant; True for an admin's form."""
    db = get_session()
    roles = accounts.grantable_roles(me)
    is_admin = Role.ADMIN in roles
    blank = [("", "—")]
    form.user_id.choices = [(u.id, f"{mask_phone(u.phone)} {u.display_name}".strip()) for u in users]
    form.role.choices = [(r.value, role_label(r)) for r in roles]
    form.village_point_id.choices = blank + [
        (n.id, f"{n.name} · {n.county.name}")
        for n in places.list_managed_nodes(db, me, kind=NodeKind.VILLAGE_POINT)
    ]
    if is_admin:
        form.distribution_center_id.choices = blank + [
            (n.id, n.name) for n in places.list_managed_nodes(db, me, kind=NodeKind.DISTRIBUTION_CENTER)
        ]
        form.county_code.choices = blank + [
            (d.code, f"{d.name} ({d.code})") for d in places.list_divisions(db, level=DivisionLevel.COUNTY)
        ]
    else:
        form.distribution_center_id.choices = blank
        form.county_code.choices = blank
    return is_admin


@bp.route("/users", methods=["GET", "POST"])
@login_required
def manage_users():  # type: ignore[no-untyped-def]
    me = actor()
    search = UserSearchForm(formdata=request.args)
    search.validate()
    phone = (search.phone.data or "").strip() if not search.phone.errors else ""
    status = 200
    # The service refuses anyone but admins and county staff (403) before anything else happens.
    try:
        users = accounts.list_users(get_session(), me, phone=phone)
    except ValidationError as exc:  # not a whole mobile number: nothing is searched
        search.phone.errors = list(exc.field_errors.get("phone") or [exc.message])
        users, phone, status = [], "", 422
    if search.phone.errors:
        users, phone, status = [], "", 422
    form = GrantRoleForm()
    is_admin = _grant_form_choices(form, users, me)
    error = None
    if request.method == "POST":
        if form.validate():
            role = Role(form.role.data)
            node_field = {Role.AGENT: form.village_point_id, Role.DC_STAFF: form.distribution_center_id}.get(
                role
            )
            try:
                accounts.grant_role(
                    get_session(),
                    me,
                    user_id=form.user_id.data,
                    role=role,
                    node_id=node_field.data if node_field is not None else None,
                    county_code=form.county_code.data if role == Role.COUNTY_STAFF else None,
                )
            except ServiceError as exc:
                renamed = {"node_id": node_field.name if node_field is not None else "role"}
                error, status = form_error(form, exc, reraise=(401, 403), renamed=renamed)
            else:
                flash(gettext("The role was granted."), "info")
                return redirect(url_for("auth.manage_users", phone=phone or None))
        else:
            status = 422
    revocable = {g.id for u in users for g in u.grants if accounts.can_revoke(me, g)}
    return render_template(
        "auth/users.html",
        users=users,
        search=search,
        phone=phone,
        form=form,
        is_admin=is_admin,
        revocable=revocable,
        revoke_form=RevokeRoleForm(formdata=None),
        error=error,
    ), status


@bp.post("/users/grants/<int:grant_id>/revoke")
@login_required
def revoke_role(grant_id: int):  # type: ignore[no-untyped-def]
    form = RevokeRoleForm()
    phone = "".join(c for c in (form.phone.data or "") if c in "0123456789")[:11]
    try:
        accounts.revoke_role(get_session(), actor(), grant_id)
    except ServiceError as exc:
        reraise_access(exc)
        flash(str(exc.message), "error")
    else:
        flash(gettext("The role was removed."), "info")
    return redirect(url_for("auth.manage_users", phone=phone or None))
