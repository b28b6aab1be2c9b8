"""JSON API (flask-smorest): blueprints under /api/v1, OpenAPI document at /api/openapi.json."""

from __future__ import annotations

from flask import Flask, Response, send_from_directory
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path

from marketplace.api.common import document_errors
from marketplace.extensions import csrf

# Only what the docs page loads; the bundle's other files (source maps, examples) stay private.
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})


def register_api(app: Flask, api: Api) -> None:
    from marketplace.api.agent.routes import blp as agent_blp
    from marketplace.api.auth.routes import blp as auth_blp
    from marketplace.api.browse.routes import blp as browse_blp
    from marketplace.api.cash.routes import blp as cash_blp
    from marketplace.api.catalog.routes import blp as catalog_blp
    from marketplace.api.coldchain.routes import blp as coldchain_blp
    from marketplace.api.commissions.routes import blp as commissions_blp
    from marketplace.api.intake.routes import blp as intake_blp
    from marketplace.api.orders.routes import blp as orders_blp
    from marketplace.api.parcels.routes import blp as parcels_blp
    from marketplace.api.places.routes import blp as places_blp
    from marketplace.api.proxy.routes import blp as proxy_blp
    from marketplace.api.scans.routes import blp as scans_blp
    from marketplace.api.search.routes import blp as search_blp
    from marketplace.api.standing.routes import blp as standing_blp
    from marketplace.api.villagers.routes import blp as villagers_blp

    for blp in (
        auth_blp,
        places_blp,
        catalog_blp,
        browse_blp,
        search_blp,
        orders_blp,
        villagers_blp,
        cash_blp,
        proxy_blp,
        parcels_blp,
        intake_blp,
        commissions_blp,
        standing_blp,
        agent_blp,
        scans_blp,
        coldchain_blp,
    ):
        # Bearer tokens, not cookies, authenticate the API: no CSRF token to carry.
        csrf.exempt(blp)
        document_errors(blp)  # every operation lists its 4xx answers with the error body
        api.register_blueprint(blp, url_prefix=f"/api/v1{blp.url_prefix or ''}")

    @app.route("/api/docs/swagger-ui/<filename>")
    def swagger_ui_file(filename: str) -> Response:
        """Swagger UI's files from the pinned package (the docs page's template: swagger_ui.html)."""
        if filename not in SWAGGER_UI_FILES:
            return Response(status=404)
        return send_from_directory(str(swagger_ui_path), filename, max_age=365 * 86400)
