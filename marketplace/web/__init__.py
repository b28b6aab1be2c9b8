"""HTML blueprints, one package per feature."""

from __future__ import annotations

from flask import Flask

from marketplace.formatting import register_filters


def init_app(app: Flask) -> None:
    from marketplace.web.admin import bp as admin_bp
    from marketplace.web.agent import bp as agent_bp
    from marketplace.web.auth import bp as auth_bp
    from marketplace.web.campaign_reports import bp as campaign_reports_bp
    from marketplace.web.campaigns import bp as campaigns_bp
    from marketplace.web.cart import bp as cart_bp
    from marketplace.web.cash import bp as cash_bp
    from marketplace.web.coldchain import bp as coldchain_bp
    from marketplace.web.commissions import bp as commissions_bp
    from marketplace.web.dev import bp as dev_bp
    from marketplace.web.finance import bp as finance_bp
    from marketplace.web.hubs import bp as hubs_bp
    from marketplace.web.intake import bp as intake_bp
    from marketplace.web.main import bp as main_bp
    from marketplace.web.media import bp as media_bp
    from marketplace.web.offline import bp as offline_bp
    from marketplace.web.orders import bp as orders_bp
    from marketplace.web.parcels import bp as parcels_bp
    from marketplace.web.places import bp as places_bp
    from marketplace.web.proxy import bp as proxy_bp
    from marketplace.web.scans import bp as scans_bp
    from marketplace.web.sell import bp as sell_bp
    from marketplace.web.shop import bp as shop_bp
    from marketplace.web.standing import bp as standing_bp
    from marketplace.web.villagers import bp as villagers_bp
    from marketplace.web.webhooks import bp as webhooks_bp

    register_filters(app)
    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(places_bp)
    app.register_blueprint(shop_bp)
    app.register_blueprint(sell_bp, url_prefix="/sell")
    app.register_blueprint(cart_bp, url_prefix="/cart")
    app.register_blueprint(media_bp, url_prefix="/media")
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(orders_bp, url_prefix="/orders")
    app.register_blueprint(finance_bp, url_prefix="/finance")
    app.register_blueprint(cash_bp)
    app.register_blueprint(hubs_bp, url_prefix="/hub")
    app.register_blueprint(commissions_bp)
    app.register_blueprint(coldchain_bp)
    app.register_blueprint(agent_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(campaigns_bp)  # /campaigns, /admin/campaigns, /sell/campaigns
    app.register_blueprint(campaign_reports_bp, url_prefix="/admin/campaigns")
    app.register_blueprint(villagers_bp, url_prefix="/agent/villagers")
    app.register_blueprint(proxy_bp, url_prefix="/agent/proxy")
    app.register_blueprint(parcels_bp, url_prefix="/agent/parcels")
    app.register_blueprint(intake_bp, url_prefix="/agent/intake")
    app.register_blueprint(standing_bp, url_prefix="/agent/standing")
    app.register_blueprint(scans_bp)
    app.register_blueprint(offline_bp)
    if app.config.get("DEV_PAGES"):
        app.register_blueprint(dev_bp, url_prefix="/dev")
