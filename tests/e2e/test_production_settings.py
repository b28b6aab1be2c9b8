"""Production over HTTP and the CLI (issue 9, finding 12): HSTS and Secure cookies, absolute URLs
from BASE_URL and never from the Host header, `flask seed` refused, `flask create-admin` with the
operator's own password."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import select

from domain import Role, User
from marketplace.config import Config, TestingConfig
from services import accounts, catalog, media
from tests.conftest import TEST_PASSWORD, count
from tests.factories import build_world, jpeg, listing

BASE_URL = "https://shop.example.cn"
HSTS = "max-age=31536000; includeSubDomains"
ADMIN_PHONE = "13800138000"
ADMIN_PASSWORD = "choose-a-Long-passphrase-2026"


def production_config(database_url: str) -> Config:
    """What an operator sets for production (the database: the test's own, lent below)."""
    config = TestingConfig()
    config.TESTING = False
    config.APP_ENV = "production"
    config.SECRET_KEY = secrets.token_hex(32)
    # Production refuses SQLite; every request is served from the test's lent session anyway.
    config.DATABASE_URL = "postgresql://app@db.invalid:5432/marketplace"
    # Shared counters, as production needs (memory:// is refused there): the test Redis.
    config.RATELIMIT_STORAGE_URI = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    config.STRIPE_API_BASE = "https://api.stripe.com"
    config.STRIPE_SECRET_KEY = "sk_live_" + secrets.token_hex(12)
    config.STRIPE_PUBLISHABLE_KEY = "pk_live_" + secrets.token_hex(12)
    config.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    config.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
    config.BASE_URL = BASE_URL
    config.PROXY_HOPS = 1
    config.DEV_PAGES = False
    config.SESSION_COOKIE_SECURE = config.REMEMBER_COOKIE_SECURE = True
    return config


@pytest.fixture()
def prod_app(build_app, database_url):  # type: ignore[no-untyped-def]
    return build_app(production_config(database_url))


class TestHeadersAndCookies:
    def test_hsts_and_secure_cookies_in_production(self, prod_app, make_user):
        user = make_user()
        client = prod_app.test_client()
        assert client.get("/").headers["Strict-Transport-Security"] == HSTS
        resp = client.post(
            "/auth/login",
            data={"phone": user.phone, "password": TEST_PASSWORD, "remember": "y"},
            base_url="https://shop.example.cn",
        )
        assert resp.status_code == 302
        cookies = resp.headers.getlist("Set-Cookie")
        assert cookies and all("Secure" in c for c in cookies), cookies
        assert any(c.startswith("remember_token=") for c in cookies), cookies
        assert resp.headers["Strict-Transport-Security"] == HSTS

    def test_no_hsts_in_development(self, client):
        assert "Strict-Transport-Security" not in client.get("/").headers


class TestAbsoluteUrls:
    def test_photo_urls_come_from_base_url_not_the_host_header(
        self, prod_app, session, admin, make_user, tmp_path, monkeypatch
    ):
        world = build_world(session, admin, make_user)
        store = media.LocalStorage(tmp_path / "media")
        monkeypatch.setitem(prod_app.extensions, "media_storage", store)
        product = catalog.create_product(session, world.farmer, listing(world))
        media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        resp = prod_app.test_client().get(f"/api/v1/products/{product.id}", headers={"Host": "evil.example"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        urls = [u for s in resp.get_json()["photos"][0]["sizes"] for u in (s["webp"], s["jpeg"])]
        assert urls and all(u.startswith(f"{BASE_URL}/media/p/") for u in urls), urls

    def test_external_links_come_from_base_url(self, prod_app):
        from flask import url_for

        with prod_app.test_request_context("/", headers={"Host": "evil.example"}):
            path = url_for("cart.pay", number="GD1")
            assert path.startswith("/cart/")
            assert url_for("cart.pay", number="GD1", _external=True) == BASE_URL + path

    def test_development_without_base_url_uses_the_requests_own_address(self, app):
        from flask import url_for

        with app.test_request_context("/", base_url="http://127.0.0.1:5000"):
            path = url_for("cart.pay", number="GD1")
            assert url_for("cart.pay", number="GD1", _external=True) == "http://127.0.0.1:5000" + path


class TestSeedAndAdmin:
    def test_seed_refuses_in_production(self, prod_app, session):
        users_before = count(session, User)
        result = prod_app.test_cli_runner().invoke(args=["seed"])
        assert result.exit_code != 0
        assert "production" in result.output
        assert count(session, User) == users_before

    def test_the_seed_module_refuses_in_production(self, monkeypatch, tmp_path):
        from seed import loader

        monkeypatch.setenv("APP_ENV", "production")
        monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
        monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:1/none")
        assert loader.main([]) != 0

    def test_create_admin_with_the_operators_password(self, prod_app, session):
        result = prod_app.test_cli_runner().invoke(
            args=["create-admin", "--phone", ADMIN_PHONE, "--name", "平台管理员"],
            input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n",
        )
        assert result.exit_code == 0, result.output
        assert ADMIN_PASSWORD not in result.output
        user = session.scalars(select(User).where(User.phone == ADMIN_PHONE)).one()
        assert [g.role for g in user.grants] == [Role.ADMIN]
        policy = accounts.AuthPolicy()
        assert accounts.authenticate(session, ADMIN_PHONE, ADMIN_PASSWORD, policy).id == user.id

    def test_create_admin_reads_the_password_from_stdin_for_scripts(self, prod_app, session):
        result = prod_app.test_cli_runner().invoke(
            args=["create-admin", "--phone", ADMIN_PHONE, "--password-stdin"], input=f"{ADMIN_PASSWORD}\n"
        )
        assert result.exit_code == 0, result.output
        assert count(session, User, User.phone == ADMIN_PHONE) == 1

    @pytest.mark.parametrize(
        ("typed", "why"),
        [
            (f"{ADMIN_PASSWORD}\nsomething-else-entirely\n" * 3, "match"),
            ("short-pw\nshort-pw\n", "12"),
            ("nongye-2026\nnongye-2026\n", "demo"),
        ],
    )
    def test_create_admin_refuses_a_bad_password(self, prod_app, session, typed, why):
        result = prod_app.test_cli_runner().invoke(args=["create-admin", "--phone", ADMIN_PHONE], input=typed)
        assert result.exit_code != 0
        assert why in result.output
        assert count(session, User, User.phone == ADMIN_PHONE) == 0

    def test_create_admin_refuses_a_taken_number(self, prod_app, session, make_user):
        user = make_user()
        result = prod_app.test_cli_runner().invoke(
            args=["create-admin", "--phone", user.phone, "--password-stdin"], input=f"{ADMIN_PASSWORD}\n"
        )
        assert result.exit_code != 0
        assert "already registered" in result.output
        assert Role.ADMIN not in {g.role for g in session.get(User, user.id).grants}
