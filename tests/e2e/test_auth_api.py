"""Accounts JSON API over HTTP: codes, registration, tokens, reset, me, users and roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain import ApiToken, Role, RoleGrant, SmsCode, SmsMessage, User
from tests.conftest import MEIXIAN, PINGYUAN, TEST_PASSWORD, count, latest_sms_code, next_phone

NEW_PASSWORD = "xin-mima-2026"


def token_for(client, user: User, password: str = TEST_PASSWORD) -> dict[str, str]:
    resp = client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": password})
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def latest_body(session, phone: str) -> str:
    return session.scalars(
        select(SmsMessage.body).where(SmsMessage.phone == phone).order_by(SmsMessage.id.desc())
    ).first()


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


class TestSmsCodes:
    def test_sends_a_code_and_answers_202(self, client, session):
        phone = next_phone()
        resp = client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        assert resp.status_code == 202
        assert count(session, SmsMessage, SmsMessage.phone == phone) == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"phone": "1381234567", "purpose": "register"}, "phone"),
            ({"phone": "12812345678", "purpose": "register"}, "phone"),
            ({"purpose": "register"}, "phone"),
            ({"phone": "13812345678", "purpose": "spam"}, "purpose"),
            ({"phone": 13812345678, "purpose": "register"}, "phone"),
            ({"phone": "13812345678", "purpose": "register", "admin": True}, "admin"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field_and_sends_nothing(self, client, session, body, field):
        before = (count(session, SmsCode), count(session, SmsMessage))
        body = assert_error(client.post("/api/v1/auth/sms-codes", json=body), 422, "validation_error")
        assert field in body["errors"]
        assert (count(session, SmsCode), count(session, SmsMessage)) == before

    def test_not_json_is_a_4xx_json_error(self, client):
        resp = client.post(
            "/api/v1/auth/sms-codes", data="phone=1", content_type="application/x-www-form-urlencoded"
        )
        assert 400 <= resp.status_code < 500 and resp.get_json()["code"]
        resp = client.post("/api/v1/auth/sms-codes", data="{not json", content_type="application/json")
        assert 400 <= resp.status_code < 500 and resp.get_json()["code"]

    def test_field_errors_come_in_the_users_language(self, client):
        resp = client.post(
            "/api/v1/auth/sms-codes", json={"purpose": "register"}, headers={"Accept-Language": "en"}
        )
        assert resp.get_json()["errors"]["phone"] == ["This field is required."]

    def test_a_registered_number_gets_the_same_202_as_a_new_one(self, client, session, make_user):
        user, new = make_user(), next_phone()
        known = client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "register"})
        other = client.post("/api/v1/auth/sms-codes", json={"phone": new, "purpose": "register"})
        assert (known.status_code, known.get_data()) == (other.status_code, other.get_data()) == (202, b"")
        # The owner is told the number has an account; no code that could register it again.
        assert count(session, SmsMessage, SmsMessage.phone == user.phone) == 1
        assert "已注册" in latest_body(session, user.phone)

    def test_listing_consent_codes_cannot_be_asked_for_through_the_public_api(
        self, client, session, make_user
    ):
        user = make_user()
        resp = client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "listing_consent"})
        assert "purpose" in assert_error(resp, 422, "validation_error")["errors"]
        assert count(session, SmsCode, SmsCode.phone == user.phone) == 0

    def test_the_documented_purposes_are_register_and_reset_password(self, client):
        spec = client.get("/api/openapi.json").get_json()
        schema = spec["components"]["schemas"]["SmsCodeRequest"]["properties"]["purpose"]
        assert schema["enum"] == ["register", "reset_password"]

    def test_resend_too_soon_is_a_429(self, client):
        phone = next_phone()
        client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        resp = client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        assert_error(resp, 429, "rate_limited")

    def test_reset_codes_do_not_tell_which_numbers_are_registered(self, client, session, make_user):
        user, unknown = make_user(), next_phone()
        known = client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "reset_password"})
        other = client.post("/api/v1/auth/sms-codes", json={"phone": unknown, "purpose": "reset_password"})
        assert (known.status_code, known.get_data()) == (other.status_code, other.get_data()) == (202, b"")
        assert count(session, SmsMessage, SmsMessage.phone == unknown) == 0

    def test_requests_from_one_address_are_rate_limited(self, app, client, monkeypatch):
        monkeypatch.setitem(app.config, "SMS_RATE_LIMIT", "2 per hour")
        for _ in range(2):
            resp = client.post("/api/v1/auth/sms-codes", json={"phone": next_phone(), "purpose": "register"})
            assert resp.status_code == 202
        resp = client.post("/api/v1/auth/sms-codes", json={"phone": next_phone(), "purpose": "register"})
        assert_error(resp, 429, "rate_limited")


class TestRegister:
    def test_right_code_creates_the_account_and_answers_201_with_it(self, client, session):
        phone = next_phone()
        client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        resp = client.post(
            "/api/v1/auth/register",
            json={
                "phone": phone,
                "code": latest_sms_code(session, phone),
                "password": TEST_PASSWORD,
                "display_name": "阿梅",
                "roles": ["farmer"],
                "locale": "en",
            },
        )
        assert resp.status_code == 201
        body = resp.get_json()
        assert body["phone"] == phone and body["display_name"] == "阿梅" and body["locale"] == "en"
        assert [g["role"] for g in body["grants"]] == ["farmer"]
        assert "password" not in body

    def test_wrong_code_is_a_422_on_the_code_and_creates_nothing(self, client, session):
        phone = next_phone()
        client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        wrong = f"{(int(latest_sms_code(session, phone)) + 1) % 1_000_000:06d}"
        resp = client.post(
            "/api/v1/auth/register", json={"phone": phone, "code": wrong, "password": TEST_PASSWORD}
        )
        assert "code" in assert_error(resp, 422, "validation_error")["errors"]
        assert count(session, User, User.phone == phone) == 0

    def test_a_staff_role_is_403_and_creates_nothing(self, client, session):
        phone = next_phone()
        client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        resp = client.post(
            "/api/v1/auth/register",
            json={
                "phone": phone,
                "code": latest_sms_code(session, phone),
                "password": TEST_PASSWORD,
                "roles": ["admin"],
            },
        )
        assert_error(resp, 403, "forbidden")
        assert count(session, User, User.phone == phone) == 0

    def test_weak_password_is_a_422_on_the_password(self, client, session):
        phone = next_phone()
        client.post("/api/v1/auth/sms-codes", json={"phone": phone, "purpose": "register"})
        resp = client.post(
            "/api/v1/auth/register",
            json={"phone": phone, "code": latest_sms_code(session, phone), "password": "short"},
        )
        assert "password" in assert_error(resp, 422, "validation_error")["errors"]


class TestTokens:
    def test_password_login_gives_a_bearer_token_for_me_with_the_full_phone(
        self, client, make_user, village_point
    ):
        point = village_point(MEIXIAN)
        user = make_user(Role.AGENT, node_id=point.id)
        resp = client.post(
            "/api/v1/auth/tokens", json={"phone": user.phone, "password": TEST_PASSWORD, "name": "app"}
        )
        assert resp.status_code == 201
        body = resp.get_json()
        assert body["token"].startswith("gdm_") and body["expires_at"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.status_code == 200
        data = me.get_json()
        assert data["phone"] == user.phone
        assert data["grants"][0] | {"id": None} == {
            "id": None,
            "role": "agent",
            "node_id": point.id,
            "node_kind": "village_point",
            "node_name": point.name,
            "county_code": None,
            "county_name": None,
        }

    def test_wrong_password_is_a_401_and_issues_nothing(self, client, session, make_user):
        user = make_user()
        resp = client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": "not-the-password"})
        assert_error(resp, 401, "unauthorized")
        assert count(session, ApiToken, ApiToken.user_id == user.id) == 0

    def test_number_backs_off_after_repeated_failures(self, client, make_user, policy):
        user = make_user()
        for _ in range(policy.login_max_failures):
            client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": "not-the-password"})
        resp = client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": TEST_PASSWORD})
        assert_error(resp, 429, "rate_limited")

    def test_token_requests_share_the_login_budget_per_address(self, app, client, make_user, monkeypatch):
        monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
        user = make_user()
        client.post("/auth/login", data={"phone": next_phone(), "password": "x"})  # the web page counts too
        for _ in range(2):
            client.post("/api/v1/auth/tokens", json={"phone": next_phone(), "password": "not-the-password"})
        resp = client.post("/api/v1/auth/tokens", json={"phone": user.phone, "password": TEST_PASSWORD})
        assert_error(resp, 429, "rate_limited")

    def test_deleting_the_current_token_logs_the_client_out(self, client, make_user):
        headers = token_for(client, make_user())
        assert client.delete("/api/v1/auth/tokens/current", headers=headers).status_code == 204
        assert_error(client.get("/api/v1/me", headers=headers), 401, "unauthorized")

    def test_deleting_without_a_token_is_a_401(self, client):
        assert_error(client.delete("/api/v1/auth/tokens/current"), 401, "unauthorized")


class TestMe:
    @pytest.mark.parametrize("header", [None, "Bearer gdm_not-a-token", "Basic dXNlcjpwYXNz", "Bearer "])
    def test_without_a_valid_token_is_a_401_json_not_a_redirect(self, client, header):
        headers = {"Authorization": header} if header else {}
        assert_error(client.get("/api/v1/me", headers=headers), 401, "unauthorized")

    def test_error_messages_follow_accept_language(self, client):
        resp = client.get("/api/v1/me", headers={"Accept-Language": "en"})
        assert resp.get_json()["message"] == "Please log in."


class TestPasswordReset:
    def test_code_sets_the_new_password_and_ends_old_tokens(self, client, session, make_user):
        user = make_user()
        old = token_for(client, user)
        client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "reset_password"})
        resp = client.post(
            "/api/v1/auth/password-reset",
            json={
                "phone": user.phone,
                "code": latest_sms_code(session, user.phone),
                "new_password": NEW_PASSWORD,
            },
        )
        assert resp.status_code == 204
        assert_error(client.get("/api/v1/me", headers=old), 401, "unauthorized")
        token_for(client, user, NEW_PASSWORD)

    def test_reused_code_is_refused(self, client, session, make_user):
        user = make_user()
        client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "reset_password"})
        body = {
            "phone": user.phone,
            "code": latest_sms_code(session, user.phone),
            "new_password": NEW_PASSWORD,
        }
        assert client.post("/api/v1/auth/password-reset", json=body).status_code == 204
        again = dict(body, new_password="third-pass-99")
        assert_error(client.post("/api/v1/auth/password-reset", json=again), 422, "validation_error")
        token_for(client, user, NEW_PASSWORD)

    def test_unknown_number_and_wrong_code_answer_alike(self, client, session, make_user):
        user = make_user()
        client.post("/api/v1/auth/sms-codes", json={"phone": user.phone, "purpose": "reset_password"})
        wrong = f"{(int(latest_sms_code(session, user.phone)) + 1) % 1_000_000:06d}"
        known = client.post(
            "/api/v1/auth/password-reset",
            json={"phone": user.phone, "code": wrong, "new_password": NEW_PASSWORD},
        )
        unknown = client.post(
            "/api/v1/auth/password-reset",
            json={"phone": next_phone(), "code": wrong, "new_password": NEW_PASSWORD},
        )
        assert known.status_code == unknown.status_code == 422
        assert known.get_json() == unknown.get_json()


class TestUsersAndRoles:
    def test_staff_list_users_with_masked_phones(self, client, admin, make_user):
        user = make_user()
        resp = client.get(
            "/api/v1/users", query_string={"phone": user.phone}, headers=token_for(client, admin)
        )
        assert resp.status_code == 200
        (row,) = resp.get_json()
        assert row["phone_masked"] == f"{user.phone[:3]}****{user.phone[-4:]}"
        assert user.phone not in resp.get_data(as_text=True)

    @pytest.mark.parametrize("number", ["abc", "1" * 12, "13%", "139", "1390000000"])
    def test_anything_but_a_full_number_is_a_422(self, client, admin, number):
        resp = client.get("/api/v1/users", query_string={"phone": number}, headers=token_for(client, admin))
        assert "phone" in assert_error(resp, 422, "validation_error")["errors"]

    def test_a_partial_number_is_refused_in_chinese(self, client, admin, make_user):
        resp = client.get(
            "/api/v1/users", query_string={"phone": "1391234"}, headers=token_for(client, admin)
        )
        assert assert_error(resp, 422, "validation_error")["errors"]["phone"] == [
            "请输入完整的11位手机号码。"
        ]

    def test_county_staff_do_not_see_users_of_another_county(self, client, make_user, village_point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        own = make_user(Role.AGENT, node_id=village_point(MEIXIAN).id)
        other = make_user(Role.AGENT, node_id=village_point(PINGYUAN).id)
        headers = token_for(client, staff)
        listed = {row["id"] for row in client.get("/api/v1/users", headers=headers).get_json()}
        assert own.id in listed and other.id not in listed
        resp = client.get("/api/v1/users", query_string={"phone": other.phone}, headers=headers)
        assert resp.status_code == 200 and resp.get_json() == []

    def test_buyers_get_403_and_anonymous_401(self, client, make_user):
        assert_error(client.get("/api/v1/users", headers=token_for(client, make_user())), 403, "forbidden")
        assert_error(client.get("/api/v1/users"), 401, "unauthorized")

    def test_admin_grants_and_revokes_a_role(self, client, session, admin, make_user):
        user = make_user()
        headers = token_for(client, admin)
        resp = client.post(
            f"/api/v1/users/{user.id}/roles",
            json={"role": "county_staff", "county_code": MEIXIAN},
            headers=headers,
        )
        assert resp.status_code == 201
        grant = resp.get_json()
        assert (grant["role"], grant["county_code"], grant["node_id"]) == ("county_staff", MEIXIAN, None)
        assert grant["county_name"]
        resp = client.delete(f"/api/v1/users/{user.id}/roles/{grant['id']}", headers=headers)
        assert resp.status_code == 204
        assert count(session, RoleGrant, RoleGrant.id == grant["id"]) == 0

    def test_county_staff_appoint_agents_in_their_county_only(
        self, client, session, make_user, village_point
    ):
        own, other = village_point(MEIXIAN), village_point(PINGYUAN)
        headers = token_for(client, make_user(Role.COUNTY_STAFF, county_code=MEIXIAN))
        user = make_user()
        resp = client.post(
            f"/api/v1/users/{user.id}/roles", json={"role": "agent", "node_id": other.id}, headers=headers
        )
        assert_error(resp, 403, "forbidden")
        resp = client.post(
            f"/api/v1/users/{user.id}/roles", json={"role": "agent", "node_id": own.id}, headers=headers
        )
        assert resp.status_code == 201
        assert [
            g.node_id
            for g in session.scalars(
                select(RoleGrant).where(RoleGrant.role == Role.AGENT, RoleGrant.user_id == user.id)
            )
        ] == [own.id]

    def test_an_agent_cannot_grant(self, client, session, make_user, village_point):
        point = village_point(MEIXIAN)
        headers = token_for(client, make_user(Role.AGENT, node_id=point.id))
        user = make_user()
        resp = client.post(
            f"/api/v1/users/{user.id}/roles", json={"role": "agent", "node_id": point.id}, headers=headers
        )
        assert_error(resp, 403, "forbidden")
        assert count(session, RoleGrant, RoleGrant.user_id == user.id) == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"role": "agent"}, "node_id"),
            ({"role": "county_staff", "county_code": "999999"}, "county_code"),
            ({"role": "king"}, "role"),
            ({"role": "agent", "node_id": "seven"}, "node_id"),
            ({}, "role"),
        ],
    )
    def test_bad_grants_are_422_naming_the_field(self, client, session, admin, make_user, body, field):
        user = make_user()
        resp = client.post(f"/api/v1/users/{user.id}/roles", json=body, headers=token_for(client, admin))
        assert field in assert_error(resp, 422, "validation_error")["errors"]
        assert count(session, RoleGrant, RoleGrant.user_id == user.id) == 1

    def test_unknown_user_and_someone_elses_grant_are_404(self, client, admin, make_user):
        one, two = make_user(), make_user()
        headers = token_for(client, admin)
        resp = client.post("/api/v1/users/999999/roles", json={"role": "buyer"}, headers=headers)
        assert_error(resp, 404, "not_found")
        resp = client.delete(f"/api/v1/users/{one.id}/roles/{two.grants[0].id}", headers=headers)
        assert_error(resp, 404, "not_found")


class TestOpenApi:
    def test_every_accounts_endpoint_is_documented(self, client):
        paths = client.get("/api/openapi.json").get_json()["paths"]
        expected = {
            ("/api/v1/auth/sms-codes", "post"),
            ("/api/v1/auth/register", "post"),
            ("/api/v1/auth/tokens", "post"),
            ("/api/v1/auth/tokens/current", "delete"),
            ("/api/v1/auth/password-reset", "post"),
            ("/api/v1/me", "get"),
            ("/api/v1/users", "get"),
            ("/api/v1/users/{user_id}/roles", "post"),
            ("/api/v1/users/{user_id}/roles/{grant_id}", "delete"),
        }
        assert {(p, m) for p, m in expected if m in paths.get(p, {})} == expected
        assert "requestBody" in paths["/api/v1/auth/tokens"]["post"]
        assert "201" in paths["/api/v1/auth/tokens"]["post"]["responses"]
