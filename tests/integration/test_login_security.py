"""Logins as a bank would run them (issue 9, findings 6, 10 and 11), on a real database.

- Wrong passwords slow down the number they were typed for, with a back-off that grows, and
  every number, registered or not, gets the same answers at the same count.
- A device the account has logged in from before still gets in with the right password.
- SMS codes: registering a known number answers like a new one; quotas are per purpose.
- County staff see the users of their county and find others by the full number only.
- Server-side login sessions: ended at logout and by a password reset, expired, purged.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain import (
    KnownDevice,
    LoginSession,
    LoginThrottle,
    Role,
    SmsCode,
    SmsMessage,
    SmsPurpose,
    clock,
)
from services import accounts, catalog
from services.errors import RateLimited, Unauthorized, ValidationError
from tests.conftest import MEIXIAN, PINGYUAN, TEST_PASSWORD, count, latest_sms_code, next_phone

WRONG = "not-the-password"


def fail(session, phone, policy, now, device_token=""):
    """One wrong password; the error it raised (Unauthorized, or RateLimited while backing off)."""
    with pytest.raises((Unauthorized, RateLimited)) as exc:
        accounts.authenticate(session, phone, WRONG, policy, now=now, device_token=device_token)
    return exc.value


def fail_until_blocked(session, phone, policy, now, device_token=""):
    for _ in range(policy.login_max_failures):
        assert isinstance(fail(session, phone, policy, now, device_token), Unauthorized)


def known_device(session, user, policy, now=None) -> str:
    """A device the user has logged in from: the token its cookie keeps."""
    return accounts.remember_device(session, user, policy, now=now)


class TestSameAnswersForEveryNumber:
    def test_unknown_and_registered_numbers_back_off_at_the_same_count_with_the_same_message(
        self, session, policy, make_user
    ):
        user = make_user()
        stranger = next_phone()
        now = clock.now()
        answers = {}
        for phone in (user.phone, stranger):
            seen = [type(fail(session, phone, policy, now)) for _ in range(policy.login_max_failures)]
            blocked = fail(session, phone, policy, now)
            answers[phone] = (seen, type(blocked), str(blocked.message))
        assert answers[user.phone] == answers[stranger]
        assert answers[stranger][1] is RateLimited

    def test_failures_are_kept_per_number_under_a_keyed_hash_not_on_the_user(
        self, session, policy, make_user
    ):
        user = make_user()
        fail(session, user.phone, policy, clock.now())
        rows = session.scalars(select(LoginThrottle)).all()
        assert all(user.phone not in row.key for row in rows)
        assert sum(row.failures for row in rows) >= 1
        assert not hasattr(user, "failed_logins") and not hasattr(user, "locked_until")


class TestBackOff:
    def test_the_wait_grows_with_each_failure_and_is_capped(self, session, policy, make_user):
        user = make_user()
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now)
        waits = []
        for _ in range(8):
            throttle = session.scalars(select(LoginThrottle).where(LoginThrottle.failures > 0)).one()
            wait = throttle.blocked_until - now
            waits.append(wait)
            # Still blocked a second before the wait ends, even for the right password.
            with pytest.raises(RateLimited):
                accounts.authenticate(
                    session, user.phone, TEST_PASSWORD, policy, now=now + wait - timedelta(seconds=1)
                )
            now = now + wait
            assert isinstance(fail(session, user.phone, policy, now), Unauthorized)
        assert waits[0] == timedelta(seconds=policy.login_backoff_seconds)
        assert waits[1] == 2 * waits[0] and waits[2] == 2 * waits[1]
        assert max(waits) == waits[-1] == timedelta(seconds=policy.login_lock_seconds)

    def test_the_right_password_once_the_wait_is_over_logs_in_and_clears_the_count(
        self, session, policy, make_user
    ):
        user = make_user()
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now)
        later = now + timedelta(seconds=policy.login_backoff_seconds)
        assert accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=later).id == user.id
        # A fresh start: the free attempts are back.
        fail_until_blocked(session, user.phone, policy, later)

    def test_old_failures_are_forgotten(self, session, policy, make_user):
        user = make_user()
        now = clock.now()
        for _ in range(policy.login_max_failures - 1):
            fail(session, user.phone, policy, now)
        much_later = now + timedelta(hours=policy.login_failure_window_hours, seconds=1)
        assert isinstance(fail(session, user.phone, policy, much_later), Unauthorized)
        assert isinstance(fail(session, user.phone, policy, much_later), Unauthorized)

    def test_a_password_reset_ends_the_back_off(self, session, sms, policy, make_user):
        user = make_user()
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now)
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.RESET_PASSWORD, policy, now=now)
        accounts.reset_password(
            session,
            phone=user.phone,
            code=latest_sms_code(session, user.phone),
            new_password="xin-mima-2026",
            policy=policy,
            now=now,
        )
        assert accounts.authenticate(session, user.phone, "xin-mima-2026", policy, now=now).id == user.id


class TestKnownDevice:
    def test_the_owners_usual_device_gets_in_while_strangers_wait(self, session, policy, make_user):
        user = make_user()
        device = known_device(session, user, policy)
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now)  # someone else, elsewhere
        with pytest.raises(RateLimited):
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now)
        got = accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now, device_token=device)
        assert got.id == user.id
        with pytest.raises(RateLimited):  # the stranger still waits
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now)

    def test_a_device_known_to_another_account_or_a_made_up_token_is_not_let_in(
        self, session, policy, make_user
    ):
        user, other = make_user(), make_user()
        others_device = known_device(session, other, policy)
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now)
        for token in (others_device, "made-up", "x" * 5000):
            with pytest.raises(RateLimited):
                accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now, device_token=token)

    def test_typos_on_the_usual_device_do_not_lock_out_other_devices(self, session, policy, make_user):
        user = make_user()
        device = known_device(session, user, policy)
        now = clock.now()
        fail_until_blocked(session, user.phone, policy, now, device_token=device)
        # The device itself backs off…
        with pytest.raises(RateLimited):
            accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now, device_token=device)
        # …but the owner's other phone is not slowed down by it.
        assert accounts.authenticate(session, user.phone, TEST_PASSWORD, policy, now=now).id == user.id

    def test_remembering_a_device_twice_keeps_one_row_and_the_same_token(self, session, policy, make_user):
        user = make_user()
        token = known_device(session, user, policy)
        assert accounts.remember_device(session, user, policy, token) == token
        assert count(session, KnownDevice, KnownDevice.user_id == user.id) == 1
        assert token not in session.scalars(select(KnownDevice.token_hash)).one()

    def test_one_phone_shared_by_two_accounts_is_known_to_both(self, session, policy, make_user):
        one, two = make_user(), make_user()
        token = known_device(session, one, policy)
        assert accounts.remember_device(session, two, policy, token) == token
        now = clock.now()
        fail_until_blocked(session, two.phone, policy, now)
        assert (
            accounts.authenticate(session, two.phone, TEST_PASSWORD, policy, now=now, device_token=token).id
            == two.id
        )


class TestSmsCodes:
    def test_register_for_a_known_number_answers_like_a_new_one_and_texts_the_owner_no_code(
        self, session, sms, policy, make_user
    ):
        user = make_user()
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.REGISTER, policy)
        (body,) = session.scalars(select(SmsMessage.body).where(SmsMessage.phone == user.phone)).all()
        assert "已注册" in body
        assert not any(c.isdigit() for c in body)
        # It counts for the number's register quota like any other text.
        with pytest.raises(RateLimited):
            accounts.request_sms_code(session, sms, user.phone, SmsPurpose.REGISTER, policy)

    def test_registering_a_known_number_fails_on_the_code_not_with_a_conflict(
        self, session, sms, policy, make_user
    ):
        user = make_user()
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.REGISTER, policy)
        stranger = next_phone()
        accounts.request_sms_code(session, sms, stranger, SmsPurpose.REGISTER, policy)
        errors = []
        for phone in (user.phone, stranger):
            with pytest.raises(ValidationError) as exc:
                accounts.register(session, phone=phone, code="000000", password=TEST_PASSWORD, policy=policy)
            errors.append((exc.value.field_errors, str(exc.value.message)))
        assert errors[0] == errors[1]
        assert "code" in errors[0][0]

    def test_quotas_are_per_purpose(self, session, sms, policy, make_user):
        user = make_user()
        start = clock.now()
        step = timedelta(seconds=policy.code_resend_seconds + 1)
        for i in range(policy.codes_per_phone_per_hour):
            accounts.request_sms_code(
                session, sms, user.phone, SmsPurpose.LISTING_CONSENT, policy, now=start + i * step
            )
        with pytest.raises(RateLimited):
            accounts.request_sms_code(
                session, sms, user.phone, SmsPurpose.LISTING_CONSENT, policy, now=start + 5 * step
            )
        # Consent texts (or register texts) never burn the reset quota, nor its resend interval.
        accounts.request_sms_code(
            session, sms, user.phone, SmsPurpose.RESET_PASSWORD, policy, now=start + 5 * step
        )
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.REGISTER, policy, now=start + 5 * step)
        assert count(session, SmsCode, SmsCode.phone == user.phone) == policy.codes_per_phone_per_hour + 2

    def test_only_register_and_reset_are_public_purposes(self):
        assert accounts.PUBLIC_SMS_PURPOSES == (SmsPurpose.REGISTER, SmsPurpose.RESET_PASSWORD)


@pytest.fixture()
def county_people(session, make_user, village_point, first_village):
    """Users tied to 梅县 and to 平远 (an agent grant, county staff, a farmer's shop), one tied to none."""
    meixian_point, pingyuan_point = village_point(MEIXIAN), village_point(PINGYUAN)

    def farmer_in(county: str):
        user = make_user(Role.FARMER)
        catalog.save_seller_profile(session, user, shop_name="果园", division_code=first_village(county).code)
        return user

    return {
        "staff": make_user(Role.COUNTY_STAFF, county_code=MEIXIAN),
        "own": {
            make_user(Role.AGENT, node_id=meixian_point.id).id,
            farmer_in(MEIXIAN).id,
            make_user(Role.COUNTY_STAFF, county_code=MEIXIAN).id,
        },
        "other": [
            make_user(Role.AGENT, node_id=pingyuan_point.id),
            farmer_in(PINGYUAN),
            make_user(Role.COUNTY_STAFF, county_code=PINGYUAN),
        ],
        "untied": make_user(Role.BUYER),
    }


class TestListUsers:
    def test_county_staff_see_only_the_users_of_their_county(self, session, county_people):
        staff = county_people["staff"]
        seen = {u.id for u in accounts.list_users(session, staff)}
        assert seen == county_people["own"] | {staff.id}

    def test_county_staff_cannot_find_a_user_of_another_county_even_by_the_full_number(
        self, session, county_people
    ):
        for user in county_people["other"]:
            assert accounts.list_users(session, county_people["staff"], phone=user.phone) == []

    def test_county_staff_find_someone_tied_to_no_county_by_the_full_number_to_appoint_them(
        self, session, county_people
    ):
        untied = county_people["untied"]
        assert accounts.list_users(session, county_people["staff"], phone=untied.phone) == [untied]
        assert untied not in accounts.list_users(session, county_people["staff"])

    @pytest.mark.parametrize("partial", ["1", "139", "1390000", "1390000000"])
    def test_a_partial_number_is_a_form_error(self, session, admin, partial):
        with pytest.raises(ValidationError) as exc:
            accounts.list_users(session, admin, phone=partial)
        assert "phone" in exc.value.field_errors

    def test_admins_find_anyone_by_the_full_number_written_any_way(self, session, admin, county_people):
        user = county_people["other"][0]
        spaced = f"+86 {user.phone[:3]} {user.phone[3:7]} {user.phone[7:]}"
        full_width = user.phone.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        for typed in (user.phone, spaced, full_width):
            assert accounts.list_users(session, admin, phone=typed) == [user]


class TestLoginSessions:
    def test_a_session_loads_its_user_until_it_is_ended(self, session, policy, make_user):
        user = make_user()
        token = accounts.start_login_session(session, user, policy, user_agent="Mozilla/5.0")
        row = session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).one()
        assert token not in row.token_hash and row.user_agent == "Mozilla/5.0"
        assert accounts.load_session_user(session, token, policy) == user
        accounts.end_login_session(session, token)
        assert row.revoked_at is not None
        assert accounts.load_session_user(session, token, policy) is None

    def test_each_login_gets_a_new_session(self, session, policy, make_user):
        user = make_user()
        assert accounts.start_login_session(session, user, policy) != accounts.start_login_session(
            session, user, policy
        )

    @pytest.mark.parametrize("token", ["", "5:1", "nonsense", "x" * 10_000, "\x00"])
    def test_anything_else_loads_nobody(self, session, policy, make_user, token):
        make_user()
        assert accounts.load_session_user(session, token, policy) is None

    def test_a_remembered_session_lasts_30_days_and_no_longer(self, session, policy, make_user):
        user = make_user()
        now = clock.now()
        token = accounts.start_login_session(session, user, policy, remember=True, now=now)
        day = timedelta(days=1)
        assert accounts.load_session_user(session, token, policy, now=now + 29 * day) == user
        assert accounts.load_session_user(session, token, policy, now=now + 30 * day) is None

    def test_a_session_not_remembered_ends_after_idle_hours_but_lives_while_used(
        self, session, policy, make_user
    ):
        user = make_user()
        now = clock.now()
        token = accounts.start_login_session(session, user, policy, now=now)
        idle = timedelta(hours=policy.session_hours)
        later = now + idle - timedelta(minutes=5)
        assert accounts.load_session_user(session, token, policy, now=later) == user
        assert (
            accounts.load_session_user(session, token, policy, now=later + idle - timedelta(minutes=5))
            == user
        )
        assert accounts.load_session_user(session, token, policy, now=later + 2 * idle) is None

    def test_a_disabled_user_is_logged_out(self, session, policy, make_user):
        user = make_user()
        token = accounts.start_login_session(session, user, policy)
        user.is_active = False
        session.commit()
        assert accounts.load_session_user(session, token, policy) is None

    def test_a_password_reset_ends_every_session_and_forgets_the_devices(
        self, session, sms, policy, make_user
    ):
        user = make_user()
        tokens = [accounts.start_login_session(session, user, policy, remember=r) for r in (True, False)]
        known_device(session, user, policy)
        accounts.request_sms_code(session, sms, user.phone, SmsPurpose.RESET_PASSWORD, policy)
        accounts.reset_password(
            session,
            phone=user.phone,
            code=latest_sms_code(session, user.phone),
            new_password="xin-mima-2026",
            policy=policy,
        )
        assert [accounts.load_session_user(session, t, policy) for t in tokens] == [None, None]
        assert count(session, KnownDevice, KnownDevice.user_id == user.id) == 0

    def test_purge_removes_ended_sessions_stale_failures_and_old_devices(self, session, policy, make_user):
        user = make_user()
        now = clock.now()
        live = accounts.start_login_session(session, user, policy, remember=True, now=now)
        ended = accounts.start_login_session(session, user, policy, now=now)
        accounts.end_login_session(session, ended, now=now)
        accounts.start_login_session(session, user, policy, now=now)  # expires after idle hours
        known_device(session, user, policy, now=now)
        fail(session, next_phone(), policy, now)
        later = now + timedelta(days=2)
        accounts.purge_expired_logins(session, policy, now=later)
        assert count(session, LoginSession, LoginSession.user_id == user.id) == 1
        assert accounts.load_session_user(session, live, policy, now=later) == user
        assert count(session, LoginThrottle) == 0
        assert count(session, KnownDevice, KnownDevice.user_id == user.id) == 1
        accounts.purge_expired_logins(session, policy, now=now + timedelta(days=policy.device_days + 1))
        assert count(session, KnownDevice, KnownDevice.user_id == user.id) == 0
