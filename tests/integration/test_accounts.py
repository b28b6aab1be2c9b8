"""Accounts services on a real database: SMS codes, registration, login, reset, roles by scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    ApiToken,
    AuditEvent,
    NodeKind,
    Role,
    RoleGrant,
    SmsCode,
    SmsMessage,
    SmsPurpose,
    User,
    clock,
)
from services import accounts, places
from services import sms as sms_service
from services.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, ValidationError
from tests.conftest import MEIXIAN, PINGYUAN, TEST_PASSWORD, count, latest_sms_code, next_phone

NEW_PASSWORD = "xin-mima-2026"


def send(session, sms_gateway, policy, phone, purpose=SmsPurpose.REGISTER, now=None) -> str:
    accounts.request_sms_code(session, sms_gateway, phone, purpose, policy, now=now)
    return latest_sms_code(session, phone)


@pytest.fixture()
def distribution_center(session, admin):
    return places.create_node(
        session, admin, NodeKind.DISTRIBUTION_CENTER, {"division_code": MEIXIAN, "name": "梅州配送中心"}
    )


class TestRequestSmsCode:
    def test_writes_a_six_digit_code_to_the_outbox_and_keeps_only_its_hash(self, session, sms, policy):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        row = session.scalars(select(SmsCode).where(SmsCode.phone == phone)).one()
        assert len(code) == 6
        assert code not in row.code_hash
        assert row.expires_at - row.created_at == timedelta(seconds=policy.code_ttl_seconds)

    def test_accepts_spaces_and_country_code_and_stores_the_bare_number(self, session, sms, policy):
        phone = next_phone()
        typed = f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
        accounts.request_sms_code(session, sms, typed, SmsPurpose.REGISTER, policy)
        assert count(session, SmsMessage, SmsMessage.phone == phone) == 1

    @pytest.mark.parametrize("phone", ["1380000000", "138000000012", "12800000000", "23800000000", "abc", ""])
    def test_malformed_phone_is_refused_and_nothing_is_written(self, session, sms, policy, phone):
        before = (count(session, SmsCode), count(session, SmsMessage))
        with pytest.raises(ValidationError) as exc:
            accounts.request_sms_code(session, sms, phone, SmsPurpose.REGISTER, policy)
        assert "phone" in exc.value.field_errors
        assert (count(session, SmsCode), count(session, SmsMessage)) == before

    def test_registering_a_registered_number_answers_like_a_new_one_and_sends_no_code(
        self, session, sms, policy, make_user
    ):
        user = make_user()
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.REGISTER, policy)
        (body,) = session.scalars(select(SmsMessage.body).where(SmsMessage.phone == user.phone)).all()
        assert "已注册" in body and not any(c.isdigit() for c in body)

    def test_a_second_code_within_the_resend_interval_is_refused(self, session, sms, policy):
        phone = next_phone()
        now = clock.now()
        send(session, sms, policy, phone, now=now)
        with pytest.raises(RateLimited):
            accounts.request_sms_code(
                session, sms, phone, SmsPurpose.REGISTER, policy, now=now + timedelta(seconds=30)
            )
        assert count(session, SmsMessage, SmsMessage.phone == phone) == 1

    def test_per_phone_hourly_limit_then_allowed_again_an_hour_later(self, session, sms, policy):
        phone = next_phone()
        start = clock.now()
        step = timedelta(seconds=policy.code_resend_seconds + 1)
        for i in range(policy.codes_per_phone_per_hour):
            send(session, sms, policy, phone, now=start + i * step)
        with pytest.raises(RateLimited):
            accounts.request_sms_code(
                session,
                sms,
                phone,
                SmsPurpose.REGISTER,
                policy,
                now=start + policy.codes_per_phone_per_hour * step,
            )
        assert count(session, SmsMessage, SmsMessage.phone == phone) == policy.codes_per_phone_per_hour
        send(session, sms, policy, phone, now=start + timedelta(hours=1, minutes=10))

    def test_reset_code_for_an_unknown_number_sends_nothing_but_counts_for_the_limit(
        self, session, sms, policy
    ):
        phone = next_phone()
        now = clock.now()
        accounts.request_sms_code(session, sms, phone, SmsPurpose.RESET_PASSWORD, policy, now=now)
        assert count(session, SmsMessage, SmsMessage.phone == phone) == 0
        with pytest.raises(RateLimited):
            accounts.request_sms_code(session, sms, phone, SmsPurpose.RESET_PASSWORD, policy, now=now)


class TestRegister:
    def register(self, session, policy, phone, code, **kw):
        return accounts.register(session, phone=phone, code=code, password=TEST_PASSWORD, policy=policy, **kw)

    def test_right_code_creates_a_verified_buyer_and_uses_the_code_up(self, session, sms, policy):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        user = self.register(session, policy, phone, code, display_name="  阿梅 ")
        assert user.roles == {Role.BUYER}
        assert user.display_name == "阿梅"
        assert user.phone_verified_at is not None
        assert session.scalars(select(SmsCode.consumed_at).where(SmsCode.phone == phone)).one() is not None

    def test_self_service_roles_are_kept(self, session, sms, policy):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        user = self.register(session, policy, phone, code, roles=(Role.FARMER, Role.MERCHANT))
        assert user.roles == {Role.FARMER, Role.MERCHANT}

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.AGENT, Role.COUNTY_STAFF, Role.DC_STAFF])
    def test_staff_roles_cannot_be_self_chosen(self, session, sms, policy, role):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        with pytest.raises(Forbidden):
            self.register(session, policy, phone, code, roles=(Role.BUYER, role))
        assert count(session, User, User.phone == phone) == 0

    def test_wrong_code_creates_nothing_and_counts_an_attempt(self, session, sms, policy):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        with pytest.raises(ValidationError) as exc:
            self.register(session, policy, phone, wrong)
        assert "code" in exc.value.field_errors
        assert count(session, User, User.phone == phone) == 0
        assert session.scalars(select(SmsCode.attempts).where(SmsCode.phone == phone)).one() == 1

    def test_expired_code_is_refused(self, session, sms, policy):
        phone = next_phone()
        now = clock.now()
        code = send(session, sms, policy, phone, now=now)
        with pytest.raises(ValidationError):
            self.register(
                session, policy, phone, code, now=now + timedelta(seconds=policy.code_ttl_seconds + 1)
            )
        assert count(session, User, User.phone == phone) == 0

    def test_code_for_password_reset_does_not_register(self, session, sms, policy, make_user):
        # A reset code is only sent to registered numbers, so make one and use its code elsewhere.
        user = make_user()
        code = send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD)
        session.delete(user)
        session.commit()
        with pytest.raises(ValidationError):
            self.register(session, policy, user.phone, code)

    def test_guessing_the_code_dies_after_the_attempt_limit(self, session, sms, policy):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(policy.code_max_attempts):
            with pytest.raises(ValidationError):
                self.register(session, policy, phone, wrong)
        with pytest.raises(ValidationError):
            self.register(session, policy, phone, code)  # even the right one is dead now
        assert count(session, User, User.phone == phone) == 0

    def test_only_the_newest_code_counts(self, session, sms, policy):
        phone = next_phone()
        now = clock.now()
        old = send(session, sms, policy, phone, now=now)
        new = send(session, sms, policy, phone, now=now + timedelta(seconds=policy.code_resend_seconds))
        if old != new:
            with pytest.raises(ValidationError):
                self.register(session, policy, phone, old, now=now + timedelta(seconds=90))
        assert self.register(session, policy, phone, new, now=now + timedelta(seconds=90)).id

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("password", {"password": "short"}),
            ("password", {"password": "11111111"}),
            ("display_name", {"display_name": "<b>x</b>"}),
            ("display_name", {"display_name": "名" * 41}),
        ],
    )
    def test_bad_input_is_refused_before_the_code_is_used(self, session, sms, policy, field, kwargs):
        phone = next_phone()
        code = send(session, sms, policy, phone)
        params = {"password": TEST_PASSWORD, **kwargs}
        with pytest.raises(ValidationError) as exc:
            accounts.register(session, phone=phone, code=code, policy=policy, **params)
        assert field in exc.value.field_errors
        assert count(session, User, User.phone == phone) == 0
        assert session.scalars(select(SmsCode.consumed_at).where(SmsCode.phone == phone)).one() is None


class TestAuthenticate:
    def test_right_password_logs_in(self, session, policy, make_user):
        user = make_user()
        assert accounts.authenticate(session, user.phone, TEST_PASSWORD, policy).id == user.id
        assert user.last_login_at is not None

    def test_wrong_password_and_unknown_number_get_the_same_answer(self, session, policy, make_user):
        user = make_user()
        with pytest.raises(Unauthorized) as wrong:
            accounts.authenticate(session, user.phone, "not-the-password", policy)
        with pytest.raises(Unauthorized) as unknown:
            accounts.authenticate(session, next_phone(), "not-the-password", policy)
        assert str(wrong.value.message) == str(unknown.value.message)

    def test_malformed_phone_is_just_a_failed_login(self, session, policy):
        with pytest.raises(Unauthorized):
            accounts.authenticate(session, "12345", TEST_PASSWORD, policy)

    def test_number_backs_off_after_repeated_failures_even_for_the_right_password(
        self, session, policy, make_user
    ):
        user = make_user()
        now = clock.now()
        for _ in range(policy.login_max_failures):
            with pytest.raises(Unauthorized):
                accounts.authenticate(session, user.phone, "not-the-password", policy, now=now)
        with pytest.raises(RateLimited):
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now)
        later = now + timedelta(seconds=policy.login_backoff_seconds)
        assert accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=later).id == user.id

    def test_disabled_account_cannot_log_in(self, session, policy, make_user):
        user = make_user()
        user.is_active = False
        session.commit()
        with pytest.raises(Forbidden):
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy)


class TestResetPassword:
    def test_new_password_works_old_one_not_and_other_sessions_and_tokens_end(
        self, session, sms, policy, make_user
    ):
        user = make_user()
        secret, _token = accounts.issue_api_token(
            session, phone=user.phone, password=TEST_PASSWORD, policy=policy
        )
        old_session = accounts.start_login_session(session, user, policy, remember=True)
        code = send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD)
        accounts.reset_password(
            session, phone=user.phone, code=code, new_password=NEW_PASSWORD, policy=policy
        )
        assert accounts.authenticate(session, user.phone, NEW_PASSWORD, policy).id == user.id
        with pytest.raises(Unauthorized):
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy)
        assert accounts.load_session_user(session, old_session, policy) is None
        assert accounts.authenticate_token(session, secret) is None

    def test_a_used_code_cannot_be_used_again(self, session, sms, policy, make_user):
        user = make_user()
        code = send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD)
        accounts.reset_password(
            session, phone=user.phone, code=code, new_password=NEW_PASSWORD, policy=policy
        )
        with pytest.raises(ValidationError):
            accounts.reset_password(
                session, phone=user.phone, code=code, new_password="third-pass-99", policy=policy
            )
        assert accounts.authenticate(session, user.phone, NEW_PASSWORD, policy).id == user.id

    def test_expired_code_changes_nothing(self, session, sms, policy, make_user):
        user = make_user()
        now = clock.now()
        code = send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD, now=now)
        with pytest.raises(ValidationError):
            accounts.reset_password(
                session,
                phone=user.phone,
                code=code,
                new_password=NEW_PASSWORD,
                policy=policy,
                now=now + timedelta(seconds=policy.code_ttl_seconds + 1),
            )
        assert accounts.authenticate(session, user.phone, TEST_PASSWORD, policy).id == user.id

    def test_unknown_number_gets_the_same_error_as_a_wrong_code(self, session, sms, policy, make_user):
        user = make_user()
        send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD)
        with pytest.raises(ValidationError) as wrong:
            accounts.reset_password(
                session, phone=user.phone, code="000000", new_password=NEW_PASSWORD, policy=policy
            )
        with pytest.raises(ValidationError) as unknown:
            accounts.reset_password(
                session, phone=next_phone(), code="000000", new_password=NEW_PASSWORD, policy=policy
            )
        assert wrong.value.field_errors.keys() == unknown.value.field_errors.keys() == {"code"}
        assert str(wrong.value.message) == str(unknown.value.message)

    def test_reset_unlocks_a_locked_account(self, session, sms, policy, make_user):
        user = make_user()
        for _ in range(policy.login_max_failures):
            with pytest.raises(Unauthorized):
                accounts.authenticate(session, user.phone, "not-the-password", policy)
        code = send(session, sms, policy, user.phone, SmsPurpose.RESET_PASSWORD)
        accounts.reset_password(
            session, phone=user.phone, code=code, new_password=NEW_PASSWORD, policy=policy
        )
        assert accounts.authenticate(session, user.phone, NEW_PASSWORD, policy).id == user.id


class TestUpdateProfile:
    def test_changes_name_and_language(self, session, make_user):
        user = make_user()
        accounts.update_profile(session, user, display_name="梅县阿强", locale="en")
        assert (user.display_name, user.locale) == ("梅县阿强", "en")

    def test_bad_input_changes_nothing(self, session, make_user):
        user = make_user(name="原名")
        with pytest.raises(ValidationError):
            accounts.update_profile(session, user, display_name="新名", locale="fr")
        session.refresh(user)
        assert (user.display_name, user.locale) == ("原名", None)

    def test_anonymous_cannot(self, session):
        with pytest.raises(Unauthorized):
            accounts.update_profile(session, None, display_name="x", locale=None)


class TestGrantRole:
    def test_admin_appoints_an_agent_for_a_village_point_with_an_audit_event(
        self, session, admin, make_user, village_point
    ):
        point = village_point(MEIXIAN)
        user = make_user()
        grant = accounts.grant_role(session, admin, user_id=user.id, role=Role.AGENT, node_id=point.id)
        assert (grant.role, grant.node_id, grant.granted_by_id) == (Role.AGENT, point.id, admin.id)
        assert (
            count(
                session, AuditEvent, AuditEvent.action == "grant_role", AuditEvent.entity_id == str(user.id)
            )
            == 1
        )

    def test_granting_the_same_role_twice_adds_one_grant(self, session, admin, make_user, village_point):
        point = village_point(MEIXIAN)
        user = make_user()
        first = accounts.grant_role(session, admin, user_id=user.id, role=Role.AGENT, node_id=point.id)
        again = accounts.grant_role(session, admin, user_id=user.id, role=Role.AGENT, node_id=point.id)
        assert first.id == again.id
        assert count(session, RoleGrant, RoleGrant.user_id == user.id, RoleGrant.role == Role.AGENT) == 1

    def test_admin_appoints_county_staff_and_dc_staff_with_their_scopes(
        self, session, admin, make_user, distribution_center
    ):
        user = make_user()
        county = accounts.grant_role(
            session, admin, user_id=user.id, role=Role.COUNTY_STAFF, county_code=MEIXIAN
        )
        dc = accounts.grant_role(
            session, admin, user_id=user.id, role=Role.DC_STAFF, node_id=distribution_center.id
        )
        assert (county.county_code, county.node_id) == (MEIXIAN, None)
        assert (dc.node_id, dc.county_code) == (distribution_center.id, None)

    def test_county_staff_appoint_agents_in_their_own_county(self, session, make_user, village_point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        point = village_point(MEIXIAN)
        user = make_user()
        accounts.grant_role(session, staff, user_id=user.id, role=Role.AGENT, node_id=point.id)
        session.refresh(user)
        assert user.has_role(Role.AGENT)

    def test_county_staff_cannot_appoint_an_agent_in_another_county(self, session, make_user, village_point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        other_point = village_point(PINGYUAN)
        user = make_user()
        with pytest.raises(Forbidden):
            accounts.grant_role(session, staff, user_id=user.id, role=Role.AGENT, node_id=other_point.id)
        assert count(session, RoleGrant, RoleGrant.user_id == user.id, RoleGrant.role == Role.AGENT) == 0

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.COUNTY_STAFF, Role.BUYER])
    def test_county_staff_grant_no_other_role(self, session, make_user, role):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        user = make_user(Role.FARMER)
        with pytest.raises(Forbidden):
            accounts.grant_role(session, staff, user_id=user.id, role=role, county_code=MEIXIAN)
        assert count(session, RoleGrant, RoleGrant.user_id == user.id) == 1

    def test_an_agent_cannot_grant_even_for_their_own_point(self, session, make_user, village_point):
        point = village_point(MEIXIAN)
        agent = make_user(Role.AGENT, node_id=point.id)
        user = make_user()
        with pytest.raises(Forbidden):
            accounts.grant_role(session, agent, user_id=user.id, role=Role.AGENT, node_id=point.id)

    def test_anonymous_is_unauthorized_and_unknown_users_are_not_revealed_to_non_staff(
        self, session, make_user
    ):
        buyer = make_user()
        with pytest.raises(Unauthorized):
            accounts.grant_role(session, None, user_id=buyer.id, role=Role.BUYER)
        with pytest.raises(Forbidden):
            accounts.grant_role(session, buyer, user_id=999_999, role=Role.BUYER)

    def test_the_scope_must_fit_the_role(self, session, admin, make_user, village_point, distribution_center):
        point = village_point(MEIXIAN)
        user = make_user()
        cases = [
            (Role.AGENT, {"node_id": distribution_center.id}, "node_id"),
            (Role.AGENT, {}, "node_id"),
            (Role.DC_STAFF, {"node_id": point.id}, "node_id"),
            (Role.COUNTY_STAFF, {"county_code": "441403001"}, "county_code"),  # a town, not a county
            (Role.COUNTY_STAFF, {}, "county_code"),
        ]
        for role, scope, field in cases:
            with pytest.raises(ValidationError) as exc:
                accounts.grant_role(session, admin, user_id=user.id, role=role, **scope)
            assert field in exc.value.field_errors, role
        assert count(session, RoleGrant, RoleGrant.user_id == user.id) == 1

    def test_unknown_user_is_not_found_for_an_admin(self, session, admin):
        with pytest.raises(NotFound):
            accounts.grant_role(session, admin, user_id=999_999, role=Role.BUYER)


class TestRevokeRole:
    def test_county_staff_remove_agents_of_their_county_only(self, session, make_user, village_point):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        own = make_user(Role.AGENT, node_id=village_point(MEIXIAN).id)
        other = make_user(Role.AGENT, node_id=village_point(PINGYUAN).id)
        accounts.revoke_role(session, staff, own.grants[0].id)
        with pytest.raises(Forbidden):
            accounts.revoke_role(session, staff, other.grants[0].id)
        assert count(session, RoleGrant, RoleGrant.user_id == own.id) == 0
        assert count(session, RoleGrant, RoleGrant.user_id == other.id) == 1

    def test_admin_removes_any_role_but_not_their_own_admin(self, session, admin, make_user):
        staff = make_user(Role.COUNTY_STAFF, county_code=PINGYUAN)
        accounts.revoke_role(session, admin, staff.grants[0].id)
        with pytest.raises(Conflict):
            accounts.revoke_role(session, admin, admin.grants[0].id)
        assert count(session, RoleGrant, RoleGrant.user_id == staff.id) == 0
        assert admin.has_role(Role.ADMIN)

    def test_grant_of_another_user_is_not_found(self, session, admin, make_user):
        one, two = make_user(), make_user()
        with pytest.raises(NotFound):
            accounts.revoke_role(session, admin, two.grants[0].id, user_id=one.id)

    def test_non_staff_cannot(self, session, make_user):
        buyer, other = make_user(), make_user()
        with pytest.raises(Forbidden):
            accounts.revoke_role(session, buyer, other.grants[0].id)


class TestListUsers:
    def test_staff_search_by_the_full_number_only(self, session, admin, make_user):
        unique = next_phone()[3:]  # 136/135 numbers below are this test's own
        stem = "136" + unique[:7]
        one, _two = make_user(phone=f"{stem}1"), make_user(phone=f"{stem}2")
        assert accounts.list_users(session, admin, phone=one.phone) == [one]
        for partial in (stem, "%", "1_" + one.phone[2:]):
            with pytest.raises(ValidationError) as exc:
                accounts.list_users(session, admin, phone=partial)
            assert "phone" in exc.value.field_errors
        full_width = one.phone.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        assert accounts.list_users(session, admin, phone=full_width) == [one]

    def test_county_staff_may_list(self, session, make_user):
        staff = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN)
        assert accounts.list_users(session, staff, phone=staff.phone) == [staff]

    @pytest.mark.parametrize("roles", [(Role.BUYER,), (Role.FARMER, Role.MERCHANT)])
    def test_others_are_refused(self, session, make_user, roles):
        with pytest.raises(Forbidden):
            accounts.list_users(session, make_user(*roles))

    def test_agents_and_dc_staff_are_refused(self, session, make_user, village_point, distribution_center):
        for user in (
            make_user(Role.AGENT, node_id=village_point(MEIXIAN).id),
            make_user(Role.DC_STAFF, node_id=distribution_center.id),
        ):
            with pytest.raises(Forbidden):
                accounts.list_users(session, user)

    def test_anonymous_is_unauthorized(self, session):
        with pytest.raises(Unauthorized):
            accounts.list_users(session, None)


class TestApiTokens:
    def test_token_authenticates_until_it_expires(self, session, policy, make_user):
        user = make_user()
        now = clock.now()
        secret, token = accounts.issue_api_token(
            session, phone=user.phone, password=TEST_PASSWORD, name="村小二App", policy=policy, now=now
        )
        assert token.token_hash != secret and secret not in token.token_hash
        assert accounts.authenticate_token(session, secret, now=now + timedelta(days=1)).id == user.id
        assert (
            accounts.authenticate_token(session, secret, now=now + timedelta(days=policy.token_ttl_days))
            is None
        )

    def test_revoked_and_unknown_tokens_do_not_authenticate(self, session, policy, make_user):
        user = make_user()
        secret, _ = accounts.issue_api_token(session, phone=user.phone, password=TEST_PASSWORD, policy=policy)
        accounts.revoke_api_token(session, secret)
        assert accounts.authenticate_token(session, secret) is None
        assert accounts.authenticate_token(session, "gdm_nonsense") is None

    def test_wrong_password_issues_no_token(self, session, policy, make_user):
        user = make_user()
        with pytest.raises(Unauthorized):
            accounts.issue_api_token(session, phone=user.phone, password="wrong-password", policy=policy)
        assert count(session, ApiToken, ApiToken.user_id == user.id) == 0

    def test_bad_token_name_writes_nothing_not_even_the_login(self, session, policy, make_user):
        user = make_user()
        with pytest.raises(ValidationError):
            accounts.issue_api_token(
                session, phone=user.phone, password=TEST_PASSWORD, name="x" * 65, policy=policy
            )
        assert count(session, ApiToken, ApiToken.user_id == user.id) == 0
        assert user.last_login_at is None


class TestSmsOutbox:
    def test_lists_the_latest_messages_newest_first(self, session):
        base = clock.now()
        for i in range(3):
            session.add(
                SmsMessage(phone=f"1380000010{i}", body=f"m{i}", created_at=base + timedelta(microseconds=i))
            )
        session.commit()
        assert [m.body for m in sms_service.list_outbox(session, limit=2)] == ["m2", "m1"]
