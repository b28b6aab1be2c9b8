"""The Flask application: the way in from HTTP, the CLI and the task queue."""

from __future__ import annotations

from typing import Any

from babel.support import NullTranslations
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_translations
from werkzeug.middleware.proxy_fix import ProxyFix

from marketplace.config import PRODUCTION, PROJECT_ROOT, Config, check_settings
from marketplace.db import Database
from marketplace.extensions import api as smorest_api
from marketplace.extensions import babel, csrf, limiter, login_manager
from services.i18n import install_translator

LOCALE_COOKIE = "lang"
HSTS = "max-age=31536000; includeSubDomains"


def external_url(path: str) -> str:
    """The absolute URL of a path of this site: BASE_URL, never the request's Host header.

    Production requires BASE_URL (config.check_settings). In development an empty BASE_URL
    means the request's own address, so a laptop's server works on any port.
    """
    base = current_app.config.get("BASE_URL") or request.host_url
    return base.rstrip("/") + "/" + path.lstrip("/")


class MarketplaceFlask(Flask):
    """Flask whose external URLs (`url_for(..., _external=True)`) start with BASE_URL."""

    def url_for(  # type: ignore[override]
        self,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        if _external and self.config.get("BASE_URL") and has_request_context():
            path = super().url_for(endpoint, _anchor=_anchor, _method=_method, **values)
            return external_url(path)
        return super().url_for(
            endpoint, _anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external, **values
        )


def select_locale() -> str:
    """The user's chosen language: session choice, then profile, then browser, then Chinese."""
    from flask import current_app
    from flask_login import current_user

    supported = current_app.config["LANGUAGES"]
    chosen = session.get(LOCALE_COOKIE) or request.cookies.get(LOCALE_COOKIE)
    if chosen in supported:
        return str(chosen)
    profile_locale = getattr(current_user, "locale", None)
    if getattr(current_user, "is_authenticated", False) and profile_locale in supported:
        return str(profile_locale)
    best = request.accept_languages.best_match(["zh", "zh_CN", "zh-CN", "en"])
    if best and best.startswith("en"):
        return "en"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def request_translations() -> NullTranslations:
    """This request's catalog, looked up once a request.

    Flask-Babel's own gettext looks the domain, the locale (str(Locale) included) and the catalog
    up again for every message, about 30 µs each on these machines, and a category page shows
    ~30 of them (docs/benchmarks.md, issue 13's fourth session). Kept in Flask-Babel's request
    namespace (g._flask_babel) under the name its refresh() clears, so a locale changed
    mid-request still takes effect."""
    space = g.get("_flask_babel")
    found = getattr(space, "babel_translations", None)
    if found is None:
        found = get_translations()
        space = g.get("_flask_babel")  # made by get_translations()
        if space is not None:
            space.babel_translations = found
    return found


def _translator(message: str) -> str:
    return request_translations().ugettext(message) if has_request_context() else message


def _install_jinja_gettext(app: Flask) -> None:
    """The templates' _() and ngettext through request_translations (Flask-Babel installed its
    own, which look everything up per message)."""
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the application. `config` is a Config instance or overrides for the default one."""
    if config is None or isinstance(config, dict):
        overrides = config or {}
        config = Config()
        for key, value in overrides.items():
            setattr(config, key, value)
    # Fail closed: refuse to start on unsafe or missing settings, before anything is built.
    check_settings(vars(config))
    app = MarketplaceFlask(
        __name__,
        instance_path=config.INSTANCE_PATH,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    app.config.from_object(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese as UTF-8, not \u escapes
    hops = app.config.get("PROXY_HOPS") or 0
    if hops:
        # Trust exactly the configured proxies: request.remote_addr (which the rate limits and
        # client_ip use) is the address the outermost of them saw; is_secure follows
        # X-Forwarded-Proto. X-Forwarded-Host is never trusted: absolute URLs come from BASE_URL.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    Database(
        app.config["DATABASE_URL"],
        echo=app.config.get("SQL_ECHO", False),
        pool_size=app.config.get("DATABASE_POOL_SIZE", 15),
    ).init_app(app)

    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(PROJECT_ROOT / "marketplace" / "translations"),
    )
    _install_jinja_gettext(app)
    install_translator(_translator)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    smorest_api.init_app(app)

    from marketplace import auth, errors, flash_door, gateways, web
    from marketplace.api import register_api
    from marketplace.tasks import init_celery

    auth.init_app(app)
    gateways.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    register_api(app, smorest_api)
    init_celery(app)
    flash_door.install(app)  # the flash sale's sold-out crowd answered before the app

    from marketplace import cli

    cli.init_app(app)

    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        return {"current_locale": str(get_locale() or "zh_Hans_CN")}

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if app.config.get("APP_ENV") == PRODUCTION:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.path.startswith("/api/docs"):
            # Swagger UI sets inline styles and draws icons as data: URIs; its scripts are our own files.
            csp = (
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
                " script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
            )
        else:
            # The card payment page adds Stripe.js's origin (web.cart sets g.csp_extra_origin).
            extra = f" {g.csp_extra_origin}" if g.get("csp_extra_origin") else ""
            csp = (
                f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'{extra};"
                " form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
            )
            if extra:
                csp += f"; frame-src 'self'{extra}; connect-src 'self'{extra}"
        response.headers.setdefault("Content-Security-Policy", csp)
        if "lang_cookie" in g:
            response.set_cookie(
                LOCALE_COOKIE, g.lang_cookie, max_age=365 * 86400, httponly=True, samesite="Lax"
            )
        return response

    from marketplace import scheduler

    scheduler.init_app(app)  # the periodic jobs of the embedded default (EMBEDDED_JOBS)

    if app.config.get("WARM_UP"):
        from services.search import text

        text.tokenizer()
    return app
