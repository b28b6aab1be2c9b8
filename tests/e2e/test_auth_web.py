"""Account pages over HTTP: register, log in and out, reset, profile, users and roles, SMS outbox."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import Role, RoleGrant, SmsCode, SmsMessage, User, clock
from tests.conftest import MEIXIAN, PINGYUAN, TEST_PASSWORD, count, latest_sms_code, login, next_phone

NEW_PASSWORD = "xin-mima-2026"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def english(client) -> None:
    client.post("/lang", data={"lang": "en", "next": "/"})


def send_code(client, url: str, phone: str, step: str = "1"):
    return client.post(url, data={"phone": phone, "send_code": "1", "step": step})


def register_data(phone: str, code: str, **extra) -> dict:
    data = {
        "phone": phone,
        "step": "2",
        "code": code,
        "password": TEST_PASSWORD,
        "password2": TEST_PASSWORD,
        "display_name": "梅县阿强",
        "role_buyer": "y",
        "submit": "1",
    }
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


class TestRegisterPage:
    def test_renders_in_chinese_with_a_numeric_phone_field_and_a_send_code_button(self, client):
        resp = client.get("/auth/register")
        html = text(resp)
        assert resp.status_code == 200
        assert '<html lang="zh-CN">' in html
        phone_input = re.search(r"<input[^>]*name=\"phone\"[^>]*>", html).group()
        assert 'type="tel"' in phone_input and 'inputmode="numeric"' in phone_input
        assert 'name="send_code"' in html
        assert 'name="password"' not in html  # step 2 comes after the code is sent

    def test_send_code_writes_the_sms_keeps_the_phone_and_shows_step_two(self, client, session):
        phone = next_phone()
        resp = send_code(client, "/auth/register", phone)
        html = text(resp)
        assert resp.status_code == 200
        assert count(session, SmsMessage, SmsMessage.phone == phone) == 1
        assert f'value="{phone}"' in html
        code_input = re.search(r"<input[^>]*name=\"code\"[^>]*>", html).group()
        assert 'autocomplete="one-time-code"' in code_input
        assert 'name="step" value="2"' in html
        assert 'role="status"' in html

    def test_finishing_registers_logs_in_and_goes_to_the_workspace(self, client, session):
        phone = next_phone()
        send_code(client, "/auth/register", phone)
        resp = client.post(
            "/auth/register", data=register_data(phone, latest_sms_code(session, phone), role_farmer="y")
        )
        assert resp.status_code == 302
        assert resp.headers["Location"].endswith("/workspace")
        user = session.scalars(select(User).where(User.phone == phone)).one()
        assert user.roles == {Role.BUYER, Role.FARMER}
        assert user.display_name == "梅县阿强"
        assert client.get("/auth/me").status_code == 200

    @pytest.mark.parametrize("phone", ["1381234567", "12812345678", "abcdefghijk", ""])
    def test_malformed_phone_is_a_form_error_and_sends_nothing(self, client, session, phone):
        before = (count(session, SmsCode), count(session, SmsMessage))
        resp = send_code(client, "/auth/register", phone)
        assert resp.status_code == 422
        assert 'class="field-error"' in text(resp)
        assert (count(session, SmsCode), count(session, SmsMessage)) == before

    def test_wrong_code_keeps_what_was_typed_and_creates_no_account(self, client, session):
        phone = next_phone()
        send_code(client, "/auth/register", phone)
        code = latest_sms_code(session, phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        resp = client.post("/auth/register", data=register_data(phone, wrong))
        html = text(resp)
        assert resp.status_code == 422
        assert f'value="{phone}"' in html and 'value="梅县阿强"' in html and f'value="{wrong}"' in html
        assert 'class="field-error"' in html
        assert count(session, User, User.phone == phone) == 0

    def test_different_passwords_create_nothing_and_leave_the_code_unused(self, client, session):
        phone = next_phone()
        send_code(client, "/auth/register", phone)
        resp = client.post(
            "/auth/register",
            data=register_data(phone, latest_sms_code(session, phone), password2="other-pass-1"),
        )
        assert resp.status_code == 422
        assert count(session, User, User.phone == phone) == 0
        code_row = session.scalars(select(SmsCode).where(SmsCode.phone == phone)).one()
        assert code_row.consumed_at is None and code_row.attempts == 0

    def test_a_registered_number_gets_the_same_page_and_its_owner_a_text_saying_so(
        self, client, session, make_user
    ):
        user, new = make_user(), next_phone()
        known, other = (
            send_code(client, "/auth/register", user.phone),
            send_code(client, "/auth/register", new),
        )
        assert known.status_code == other.status_code == 200
        assert text(known).replace(user.phone, "PHONE") == text(other).replace(new, "PHONE")
        (body,) = session.scalars(select(SmsMessage.body).where(SmsMessage.phone == user.phone)).all()
        assert "已注册" in body and not re.search(r"\d{6}", body)

    def test_registering_a_registered_number_fails_on_the_code(self, client, session, make_user):
        user = make_user()
        send_code(client, "/auth/register", user.phone)
        resp = client.post("/auth/register", data=register_data(user.phone, "123456"))
        assert resp.status_code == 422
        assert "already registered" not in text(resp) and "已注册" not in text(resp)
        assert count(session, User, User.phone == user.phone) == 1

    def test_a_staff_role_cannot_be_slipped_in(self, client, session):
        phone = next_phone()
        send_code(client, "/auth/register", phone)
        data = register_data(phone, latest_sms_code(session, phone), role_admin="y", roles="admin")
        client.post("/auth/register", data=data)
        user = session.scalars(select(User).where(User.phone == phone)).one()
        assert user.roles == {Role.BUYER}

    def test_sending_codes_is_rate_limited_per_ip_but_finishing_the_form_is_not(
        self, app, client, monkeypatch
    ):
        monkeypatch.setitem(app.config, "SMS_RATE_LIMIT", "2 per hour")
        assert send_code(client, "/auth/register", next_phone()).status_code == 200
        assert send_code(client, "/auth/reset", next_phone()).status_code == 200  # one budget for both
        assert send_code(client, "/auth/register", next_phone()).status_code == 429
        finish = client.post("/auth/register", data=register_data(next_phone(), "123456"))
        assert finish.status_code == 422


class TestLoginPage:
    def test_renders_with_phone_and_password_fields(self, client):
        html = text(client.get("/auth/login"))
        assert re.search(r'<input[^>]*name="phone"[^>]*type="tel"', html)
        assert 'autocomplete="current-password"' in html

    def test_right_password_logs_in_and_follows_a_local_next(self, client, make_user):
        user = make_user()
        resp = client.post("/auth/login?next=/auth/me", data={"phone": user.phone, "password": TEST_PASSWORD})
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/auth/me"
        assert client.get("/auth/me").status_code == 200

    @pytest.mark.parametrize(
        "target",
        ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "evil"],
    )
    def test_a_next_pointing_elsewhere_goes_to_the_workspace(self, client, make_user, target):
        user = make_user()
        resp = client.post(
            "/auth/login",
            query_string={"next": target},
            data={"phone": user.phone, "password": TEST_PASSWORD},
        )
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/workspace"

    def test_wrong_password_is_a_form_error_and_logs_nobody_in(self, client, make_user):
        user = make_user()
        english(client)
        resp = login(client, user.phone, "not-the-password")
        assert resp.status_code == 422
        assert "Wrong mobile number or password" in text(resp)
        assert f'value="{user.phone}"' in text(resp)
        assert client.get("/auth/me").status_code == 302

    def test_malformed_phone_and_missing_fields_are_form_errors(self, client):
        assert login(client, "123", TEST_PASSWORD).status_code == 422
        assert client.post("/auth/login", data={}).status_code == 422

    def test_number_backs_off_after_repeated_wrong_passwords(self, client, make_user, policy):
        user = make_user()
        for _ in range(policy.login_max_failures):
            assert login(client, user.phone, "not-the-password").status_code == 422
        resp = login(client, user.phone, TEST_PASSWORD)
        assert resp.status_code == 429
        assert client.get("/auth/me").status_code == 302

    def test_login_posts_are_rate_limited_per_ip(self, app, client, make_user, monkeypatch):
        monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
        user = make_user()
        for _ in range(3):
            login(client, next_phone(), "not-the-password")
        assert client.get("/auth/login").status_code == 200  # only posts count
        resp = login(client, user.phone, TEST_PASSWORD)
        assert resp.status_code == 429
        assert client.get("/auth/me").status_code == 302


class TestLogout:
    def test_a_get_only_asks_and_a_post_ends_the_session(self, client, make_user):
        user = make_user()
        login(client, user.phone)
        asked = client.get("/auth/logout")
        assert asked.status_code == 200 and 'method="post"' in text(asked)
        assert client.get("/auth/me").status_code == 200
        resp = client.post("/auth/logout")
        assert resp.status_code == 302
        assert client.get("/auth/me").status_code == 302


class TestResetPage:
    @staticmethod
    def normalized(html: str, phone: str) -> str:
        html = html.replace(phone, "PHONE")
        return re.sub(r'name="csrf_token" value="[^"]*"', "", html)

    def test_registered_and_unknown_numbers_get_the_same_page_but_only_one_gets_a_code(
        self, client, session, make_user
    ):
        user = make_user()
        unknown = next_phone()
        known_resp = send_code(client, "/auth/reset", user.phone)
        unknown_resp = send_code(client, "/auth/reset", unknown)
        assert known_resp.status_code == unknown_resp.status_code == 200
        assert self.normalized(text(known_resp), user.phone) == self.normalized(text(unknown_resp), unknown)
        assert count(session, SmsMessage, SmsMessage.phone == user.phone) == 1
        assert count(session, SmsMessage, SmsMessage.phone == unknown) == 0

    def test_code_sets_the_new_password_and_logs_in(self, client, session, make_user):
        user = make_user()
        send_code(client, "/auth/reset", user.phone)
        data = register_data(
            user.phone, latest_sms_code(session, user.phone), password=NEW_PASSWORD, password2=NEW_PASSWORD
        )
        resp = client.post("/auth/reset", data=data)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/workspace")
        client.post("/auth/logout")
        assert login(client, user.phone, TEST_PASSWORD).status_code == 422
        assert login(client, user.phone, NEW_PASSWORD).status_code == 302

    def test_a_used_code_does_not_work_twice(self, client, session, make_user):
        user = make_user()
        send_code(client, "/auth/reset", user.phone)
        code = latest_sms_code(session, user.phone)
        data = register_data(user.phone, code, password=NEW_PASSWORD, password2=NEW_PASSWORD)
        assert client.post("/auth/reset", data=data).status_code == 302
        client.post("/auth/logout")
        again = register_data(user.phone, code, password="third-pass-99", password2="third-pass-99")
        assert client.post("/auth/reset", data=again).status_code == 422
        assert login(client, user.phone, NEW_PASSWORD).status_code == 302

    def test_an_expired_code_is_refused(self, client, session, make_user, monkeypatch):
        user = make_user()
        send_code(client, "/auth/reset", user.phone)
        row = session.scalars(select(SmsCode).where(SmsCode.phone == user.phone)).one()
        row.expires_at = clock.now() - timedelta(seconds=1)  # as if the time had run out
        session.commit()
        data = register_data(
            user.phone, latest_sms_code(session, user.phone), password=NEW_PASSWORD, password2=NEW_PASSWORD
        )
        resp = client.post("/auth/reset", data=data)
        assert resp.status_code == 422
        assert 'class="field-error"' in text(resp)
        assert login(client, user.phone, TEST_PASSWORD).status_code == 302


class TestProfilePage:
    def test_anonymous_is_sent_to_log_in_and_back(self, client):
        resp = client.get("/auth/me")
        assert resp.status_code == 302
        assert "/auth/login?next=" in resp.headers["Location"]

    def test_shows_the_own_phone_in_full_and_roles_with_their_scope(self, client, make_user, village_point):
        point = village_point(MEIXIAN)
        user = make_user(Role.AGENT, node_id=point.id)
        login(client, user.phone)
        english(client)
        html = text(client.get("/auth/me"))
        assert user.phone in html
        assert 'data-role="agent"' in html
        assert "Village agent" in html and "Village service point" in html and point.name in html
        assert 'action="/auth/logout"' in html

    def test_changes_name_and_language(self, client, session, make_user):
        user = make_user()
        login(client, user.phone)
        resp = client.post("/auth/me", data={"display_name": "阿梅", "locale": "en"})
        assert resp.status_code == 302
        session.refresh(user)
        assert (user.display_name, user.locale) == ("阿梅", "en")
        assert '<html lang="en">' in text(client.get("/auth/me"))

    @pytest.mark.parametrize(
        "data", [{"display_name": "<b>hi</b>", "locale": "en"}, {"display_name": "阿梅", "locale": "fr"}]
    )
    def test_bad_input_is_a_form_error_and_changes_nothing(self, client, session, make_user, data):
        user = make_user(name="原名")
        login(client, user.phone)
        resp = client.post("/auth/me", data=data)
        assert resp.status_code == 422
        assert 'class="field-error"' in text(resp)
        session.refresh(user)
        assert (user.display_name, user.locale) == ("原名", None)


class TestManageUsersPage:
    def test_anonymous_is_sent_to_log_in(self, client):
        assert client.get("/auth/users").status_code == 302

    @pytest.mark.parametrize("role", [Role.BUYER, Role.FARMER, Role.MERCHANT])
    def test_other_roles_get_403(self, client, make_user, role):
        login(client, make_user(role).phone)
        assert client.get("/auth/users").status_code == 403
        assert client.post("/auth/users", data={"user_id": "1", "role": "admin"}).status_code == 403

    def test_an_agent_gets_403_and_cannot_grant(self, client, session, make_user, village_point):
        point = village_point(MEIXIAN)
        agent = make_user(Role.AGENT, node_id=point.id)
        other = make_user()
        login(client, agent.phone)
        assert client.get("/auth/users").status_code == 403
        resp = client.post(
            "/auth/users", data={"user_id": other.id, "role": "agent", "village_point_id": point.id}
        )
        assert resp.status_code == 403
        assert count(session, RoleGrant, RoleGrant.user_id == other.id) == 1

    def test_staff_see_masked_phones_only(self, client, admin, make_user):
        user = make_user()
        login(client, admin.phone)
        html = text(client.get("/auth/users", query_string={"phone": user.phone}))
        listed = re.search(rf'<li id="user-{user.id}">.*?</li>', html, re.S).group()
        assert f"{user.phone[:3]}****{user.phone[-4:]}" in listed
        # Only echoed where the staffer typed it (the search box, hidden fields and form actions).
        assert user.phone not in re.sub(r'value="[^"]*"', "", listed)

    def test_a_partial_number_finds_nobody_and_says_why(self, client, admin, make_user):
        user = make_user()
        login(client, admin.phone)
        english(client)
        resp = client.get("/auth/users", query_string={"phone": user.phone[:9]})
        assert resp.status_code == 422
        assert "11-digit mobile number" in text(resp)
        assert f'id="user-{user.id}"' not in text(resp)

    def test_county_staff_see_the_users_of_their_county_only(self, client, make_user, village_point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        own = make_user(Role.AGENT, node_id=village_point(MEIXIAN).id)
        other = make_user(Role.AGENT, node_id=village_point(PINGYUAN).id)
        login(client, staff.phone)
        html = text(client.get("/auth/users"))
        assert f'id="user-{own.id}"' in html and f'id="user-{other.id}"' not in html
        html = text(client.get("/auth/users", query_string={"phone": other.phone}))
        assert f'id="user-{other.id}"' not in html

    def test_search_by_the_full_number(self, client, admin, make_user):
        one, two = make_user(), make_user()
        login(client, admin.phone)
        html = text(client.get("/auth/users", query_string={"phone": one.phone}))
        assert f'id="user-{one.id}"' in html
        assert f'id="user-{two.id}"' not in html

    def test_admin_grants_an_agent_for_a_village_point(
        self, client, session, admin, make_user, village_point
    ):
        point = village_point(MEIXIAN)
        user = make_user()
        login(client, admin.phone)
        resp = client.post(
            f"/auth/users?phone={user.phone}",
            data={"user_id": user.id, "role": "agent", "village_point_id": point.id},
        )
        assert resp.status_code == 302
        grant = session.scalars(
            select(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.role == Role.AGENT)
        ).one()
        assert grant.node_id == point.id

    def test_admin_granting_an_agent_without_a_point_gets_a_field_error(
        self, client, session, admin, make_user
    ):
        user = make_user()
        login(client, admin.phone)
        resp = client.post(f"/auth/users?phone={user.phone}", data={"user_id": user.id, "role": "agent"})
        assert resp.status_code == 422
        assert 'class="field-error"' in text(resp)
        assert count(session, RoleGrant, RoleGrant.user_id == user.id) == 1

    def test_county_staff_are_offered_only_agents_for_their_own_county(
        self, client, make_user, village_point
    ):
        own, other = village_point(MEIXIAN), village_point(PINGYUAN)
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        user = make_user()
        login(client, staff.phone)
        html = text(client.get("/auth/users", query_string={"phone": user.phone}))
        role_select = re.search(r'<select[^>]*name="role".*?</select>', html, re.S).group()
        assert re.findall(r'value="([^"]+)"', role_select) == ["agent"]
        assert f'value="{own.id}"' in html and f'value="{other.id}"' not in html
        assert 'name="county_code"' not in html and 'name="distribution_center_id"' not in html

    def test_county_staff_cannot_appoint_an_agent_in_another_county(
        self, client, session, make_user, village_point
    ):
        other = village_point(PINGYUAN)
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        user = make_user()
        login(client, staff.phone)
        resp = client.post(
            f"/auth/users?phone={user.phone}",
            data={"user_id": user.id, "role": "agent", "village_point_id": other.id},
        )
        assert resp.status_code == 422  # not among the points they may choose
        assert count(session, RoleGrant, RoleGrant.user_id == user.id, RoleGrant.role == Role.AGENT) == 0

    def test_revoke_button_removes_the_role(self, client, session, admin, make_user):
        staff = make_user(Role.COUNTY_STAFF, county_code=PINGYUAN)
        grant_id = staff.grants[0].id
        login(client, admin.phone)
        html = text(client.get("/auth/users", query_string={"phone": staff.phone}))
        assert f'action="/auth/users/grants/{grant_id}/revoke"' in html
        resp = client.post(f"/auth/users/grants/{grant_id}/revoke", data={"phone": staff.phone})
        assert resp.status_code == 302
        assert count(session, RoleGrant, RoleGrant.id == grant_id) == 0

    def test_county_staff_cannot_revoke_an_agent_of_another_county(
        self, client, session, make_user, village_point
    ):
        agent = make_user(Role.AGENT, node_id=village_point(PINGYUAN).id)
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        login(client, staff.phone)
        html = text(client.get("/auth/users", query_string={"phone": agent.phone}))
        assert "/revoke" not in html
        resp = client.post(f"/auth/users/grants/{agent.grants[0].id}/revoke")
        assert resp.status_code == 403
        assert count(session, RoleGrant, RoleGrant.user_id == agent.id) == 1

    def test_admin_cannot_remove_their_own_admin_role(self, client, session, admin):
        login(client, admin.phone)
        resp = client.post(f"/auth/users/grants/{admin.grants[0].id}/revoke")
        assert resp.status_code == 302
        assert count(session, RoleGrant, RoleGrant.user_id == admin.id, RoleGrant.role == Role.ADMIN) == 1


class TestDevSmsOutbox:
    def test_shows_the_latest_messages_newest_first_under_a_banner(self, client, session):
        base = clock.now()  # microseconds apart: newer than every message before, older than any after
        for i in range(52):
            session.add(
                SmsMessage(
                    phone="13800000000",
                    body=f"outbox-test-{i:02d}",
                    created_at=base + timedelta(microseconds=i),
                )
            )
        session.commit()
        english(client)
        html = text(client.get("/dev/sms"))
        assert "Development page" in html
        assert html.index("outbox-test-51") < html.index("outbox-test-50")
        assert "outbox-test-02" in html and "outbox-test-01" not in html  # 50 messages only


class TestPagesInBothLanguages:
    @pytest.mark.parametrize(
        "url", ["/auth/login", "/auth/register", "/auth/reset", "/auth/me", "/auth/users", "/dev/sms"]
    )
    @pytest.mark.parametrize(("lang", "html_lang"), [("zh_Hans_CN", "zh-CN"), ("en", "en")])
    def test_page_renders(self, client, admin, url, lang, html_lang):
        if url in ("/auth/me", "/auth/users"):
            login(client, admin.phone)
        client.post("/lang", data={"lang": lang})
        resp = client.get(url)
        assert resp.status_code == 200
        assert f'<html lang="{html_lang}">' in text(resp)


class TestGarbageInput:
    @pytest.mark.parametrize("url", ["/auth/login", "/auth/register", "/auth/reset"])
    @pytest.mark.parametrize(
        "data",
        [
            {"phone": "\x00" * 50, "password": "x", "send_code": "1"},
            {
                "phone": "1" * 5000,
                "code": "💥",
                "password": "p" * 5000,
                "password2": "q",
                "step": "2",
                "submit": "1",
            },
            {"phone": ["13800000000", "13900000000"], "step": "9", "role_buyer": "maybe"},
        ],
    )
    def test_never_a_server_error(self, client, url, data):
        resp = client.post(url, data=data)
        assert resp.status_code in (200, 400, 422)
