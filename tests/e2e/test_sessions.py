"""Sessions over HTTP (issue 9, findings 6 and 11): rotated at login, ended on the server at
logout, a remember cookie of 30 days at most that logout revokes, the API by bearer token only,
and the owner's usual phone let in while a stranger keeps typing wrong passwords."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from domain import LoginSession
from marketplace.auth import DEVICE_COOKIE
from tests.conftest import TEST_PASSWORD, count, latest_sms_code, login, next_phone

REMEMBER = "remember_token"
SESSION = "session"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def cookie(client, name: str, path: str = "/") -> str | None:
    found = client.get_cookie(name, path=path)
    return found.value if found is not None else None


def copy_cookies(app, source, *names: str):
    """A second browser holding copies of the first one's cookies (as a thief would)."""
    thief = app.test_client()
    for name in names:
        value = cookie(source, name)
        assert value, f"no {name} cookie to copy"
        thief.set_cookie(name, value)
    return thief


def logged_in(client) -> bool:
    return client.get("/auth/me").status_code == 200


def remember_login(client, phone: str, password: str = TEST_PASSWORD):
    return client.post("/auth/login", data={"phone": phone, "password": password, "remember": "y"})


def token_headers(client, phone: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/tokens", json={"phone": phone, "password": TEST_PASSWORD})
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


class TestLoginRotatesTheSession:
    def test_what_the_session_held_before_login_is_dropped_but_the_language_stays(self, client, make_user):
        user = make_user()
        client.post("/lang", data={"lang": "en"})
        with client.session_transaction() as sess:
            sess["planted"] = "by-someone-else"  # e.g. a fixated session
            sess["csrf_token"] = "fixed"
        assert login(client, user.phone).status_code == 302
        with client.session_transaction() as sess:
            assert "planted" not in sess and sess.get("csrf_token") != "fixed"
            assert sess["lang"] == "en"
        assert '<html lang="en">' in text(client.get("/auth/me"))

    def test_each_login_is_a_new_server_side_session(self, client, session, make_user):
        user = make_user()
        login(client, user.phone)
        first = cookie(client, SESSION)
        client.post("/auth/logout")
        login(client, user.phone)
        assert cookie(client, SESSION) != first
        assert count(session, LoginSession, LoginSession.user_id == user.id) == 2

    def test_the_session_cookie_does_not_carry_the_user_id(self, client, make_user):
        user = make_user()
        login(client, user.phone)
        with client.session_transaction() as sess:
            assert not re.fullmatch(rf"{user.id}(:\d+)?", str(sess["_user_id"]))


class TestLogoutEndsTheSessionOnTheServer:
    def test_a_copied_session_cookie_stops_working_at_logout(self, app, client, make_user):
        user = make_user()
        login(client, user.phone)
        thief = copy_cookies(app, client, SESSION)
        assert logged_in(thief)
        assert client.post("/auth/logout").status_code == 302
        assert not logged_in(client)
        assert not logged_in(thief)

    def test_a_copied_remember_cookie_stops_working_at_logout(self, app, client, make_user):
        user = make_user()
        remember_login(client, user.phone)
        thief = copy_cookies(app, client, REMEMBER)  # the browser session itself long gone
        assert logged_in(thief)
        client.post("/auth/logout")
        assert cookie(client, REMEMBER) is None
        assert not logged_in(thief)

    def test_the_row_records_the_browser_and_its_end(self, client, session, make_user):
        user = make_user()
        client.post(
            "/auth/login",
            data={"phone": user.phone, "password": TEST_PASSWORD},
            headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) 测试"},
        )
        row = session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).one()
        assert row.user_agent.startswith("Mozilla/5.0 (Linux; Android 14)") and row.revoked_at is None
        client.post("/auth/logout")
        session.refresh(row)
        assert row.revoked_at is not None

    def test_a_password_reset_ends_the_other_browsers_sessions(self, app, client, session, make_user):
        user = make_user()
        other = app.test_client()
        remember_login(other, user.phone)
        client.post("/auth/reset", data={"phone": user.phone, "send_code": "1", "step": "1"})
        code = latest_sms_code(session, user.phone)
        data = {
            "phone": user.phone,
            "step": "2",
            "code": code,
            "password": "xin-mima-2026",
            "password2": "xin-mima-2026",
            "submit": "1",
        }
        assert client.post("/auth/reset", data=data).status_code == 302
        assert logged_in(client)
        assert not logged_in(other)


class TestRememberCookie:
    def test_lasts_30_days_at_most_and_is_http_only(self, client, make_user):
        user = make_user()
        resp = remember_login(client, user.phone)
        header = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith(f"{REMEMBER}="))
        assert "HttpOnly" in header
        # Flask-Login sets Expires from the machine's clock.
        expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", header).group(1))
        lifetime = expires - datetime.now(UTC)
        assert timedelta(days=29) < lifetime <= timedelta(days=30)

    def test_not_asked_for_not_set(self, client, make_user):
        user = make_user()
        client.post("/auth/login", data={"phone": user.phone, "password": TEST_PASSWORD})
        assert cookie(client, REMEMBER) is None


class TestApiByBearerTokenOnly:
    def test_a_valid_bearer_token_works_even_with_a_remember_cookie_present(self, client, make_user):
        user, other = make_user(), make_user()
        remember_login(client, other.phone)  # the same browser keeps someone's remember cookie
        assert cookie(client, REMEMBER)
        with client.session_transaction() as sess:
            sess.clear()  # the browser session ended; only the remember cookie is left
        headers = token_headers(client, user.phone)
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["phone"] == user.phone

    def test_cookies_never_authorize_the_api(self, client, make_user):
        user = make_user()
        remember_login(client, user.phone)
        assert client.get("/api/v1/me").status_code == 401
        with client.session_transaction() as sess:
            sess.clear()
        assert client.get("/api/v1/me").status_code == 401

    def test_a_bad_bearer_token_is_a_401_even_with_a_valid_session(self, client, make_user):
        user = make_user()
        login(client, user.phone)
        resp = client.get("/api/v1/me", headers={"Authorization": "Bearer gdm_nonsense"})
        assert resp.status_code == 401


class TestLoginBackOffOverHttp:
    def test_the_owners_usual_phone_gets_in_while_a_stranger_backs_off(self, app, client, make_user, policy):
        user = make_user()
        assert login(client, user.phone).status_code == 302  # the owner's phone, once
        device = client.get_cookie(DEVICE_COOKIE, path="/auth")
        assert device is not None and device.http_only
        client.post("/auth/logout")

        stranger = app.test_client()
        for _ in range(policy.login_max_failures):
            assert login(stranger, user.phone, "not-the-password").status_code == 422
        assert login(stranger, user.phone).status_code == 429
        assert not logged_in(stranger)

        assert login(client, user.phone).status_code == 302
        assert logged_in(client)

    def test_registered_and_unknown_numbers_get_the_same_pages(self, app, make_user, policy):
        user = make_user()
        pages = []
        for phone in (user.phone, next_phone()):
            browser = app.test_client()
            seen = [login(browser, phone, "not-the-password") for _ in range(policy.login_max_failures + 1)]
            pages.append(
                [(r.status_code, re.sub(r'value="[^"]*"', "", text(r)).replace(phone, "PHONE")) for r in seen]
            )
        assert pages[0] == pages[1]
        assert pages[0][-1][0] == 429

    def test_the_api_backs_off_alike_for_every_number_and_knows_the_apps_device(
        self, client, make_user, policy
    ):
        user = make_user()
        first = client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": TEST_PASSWORD})
        device = first.get_json()["device_token"]
        assert device
        answers = []
        for phone in (user.phone, next_phone()):
            for _ in range(policy.login_max_failures):
                client.post("/api/v1/auth/tokens", json={"phone": phone, "password": "not-the-password"})
            resp = client.post("/api/v1/auth/tokens", json={"phone": phone, "password": TEST_PASSWORD})
            answers.append((resp.status_code, resp.get_json()["message"]))
        assert answers[0] == answers[1] and answers[0][0] == 429
        resp = client.post(
            "/api/v1/auth/tokens",
            json={"phone": user.phone, "password": TEST_PASSWORD, "device_token": device},
        )
        assert resp.status_code == 201
        assert resp.get_json()["device_token"] == device
