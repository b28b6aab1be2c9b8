"""Test harness: one database per run (SQLite or PostgreSQL), built with `alembic upgrade head`;
each test runs inside a transaction that is rolled back, with savepoints for the services' commits.

Choose the backend with TEST_DATABASE=sqlite|postgresql (make test runs both).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from domain import Role, User
from domain import clock as product_clock
from marketplace import create_app
from marketplace.config import PROJECT_ROOT, Config, TestingConfig
from marketplace.db import make_engine
from marketplace.extensions import limiter
from services import accounts, places
from services.sms import OutboxSmsGateway

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    # The SQLite tier and the year-ahead unit pass (make test-sqlite, test-year-ahead) run under
    # Debian's libfaketime 0.9.10, whose clock_nanosleep(TIMER_ABSTIME) fails with EINVAL once
    # the monotonic clock is left real (FAKETIME_DONT_FAKE_MONOTONIC=1, needed so lock and event
    # timeouts still end). time.sleep uses that call; a select() timeout sleeps just as well and
    # is relative.
    import select
    import time

    def _sleep(seconds: float) -> None:
        select.select([], [], [], max(0.0, seconds))

    time.sleep = _sleep

# Property tests never fail for being slow: a busy 2-core CI machine (or one running the suite twice
# at once) would otherwise turn a deadline or the too-slow health check into a red build. CI also
# derandomizes, so a failure there reproduces by running the same commit again.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

SEED_DATA = PROJECT_ROOT / "seed" / "data"
# The instant every test starts at, whatever the date the suite runs on (make test runs the SQLite
# tier, and the unit tier a second time, with the machine's clock a year ahead to prove it).
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_PASSWORD = "nongye-2026"


def backend() -> str:
    return os.environ.get("TEST_DATABASE", "sqlite")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--authz-write",
        action="store_true",
        default=False,
        help="rewrite tests/e2e/authz_matrix.csv from what the app answers (review the diff)",
    )


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The authorization matrix's figures (tests/e2e/test_authz_matrix.py), read from the reports'
    user_properties so that they arrive from pytest-xdist workers too."""
    figures: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name in ("authz_cells", "authz_leaks"):
                    figures[name] = figures.get(name, 0) + int(value)
    for name in ("authz_cells", "authz_leaks"):
        if name in figures:
            terminalreporter.write_line(f"{name}: {figures[name]}")


def _create_pg_database(name: str) -> str:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(name: str) -> None:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


DATABASES_MADE: list[str] = []  # by new_database, in order: the ledger checks look at them too


@pytest.fixture(scope="session")
def new_database(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A factory for empty databases of the chosen backend, dropped at the end of the run."""
    created: list[str] = []

    def make(label: str = "db") -> str:
        if backend() == "postgresql":
            name = f"gdm_test_{label}_{uuid.uuid4().hex[:10]}"
            created.append(name)
            url = _create_pg_database(name)
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp(label) / 'test.db'}"
        DATABASES_MADE.append(url)
        return url

    yield make
    for name in created:
        _drop_pg_database(name)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str, target: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), target)


@pytest.fixture(scope="session")
def database_url(new_database) -> str:  # type: ignore[no-untyped-def]
    url = new_database("main")
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        # Guangdong's real divisions are reference data: loaded once per run, committed.
        places.import_divisions(
            session, places.read_division_files(SEED_DATA / "divisions.csv", SEED_DATA / "coordinates.csv")
        )
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


# The modules whose every test uses the `market` fixture (tests/factories.py's build_market,
# ~200 statements through the services): the market is built once per module (per xdist worker)
# in a transaction the module's tests share, and each test runs in a SAVEPOINT of it, rolled
# back after, so each starts from the same freshly built market as if it had built it itself.
# Only modules whose tests use the market belong here, or a few that do not and never mind its
# rows (an OpenAPI check, a 404, a refused role: any test of the module sees the market's rows),
# and none that opens another connection to the run's database while a test runs (on SQLite the
# module's transaction holds the write lock).
SHARED_MARKET = (
    "integration/test_intake.py",
    "integration/test_checkout.py",
    "integration/test_proxy_orders.py",
    "integration/test_parcels.py",
    "integration/test_payment_retry.py",
    "integration/test_coldchain.py",
    "integration/test_notifications.py",
    "integration/test_commissions.py",
    "integration/test_logistics.py",
    "integration/test_capture_for_less.py",
    "integration/test_cash_remittance.py",
    "integration/test_hubs.py",
    "integration/test_exceptions.py",
    "integration/test_order_offers.py",
    "integration/test_refund_lookup.py",
    "integration/test_schedule_plans.py",
    "e2e/test_cart_checkout_web.py",
    "e2e/test_coldchain_web.py",
    "e2e/test_intake_web.py",
    "e2e/test_parcels_web.py",
    "e2e/test_trace_pages.py",
    "e2e/test_hubs_web.py",
    "e2e/test_pickup_codes_web.py",
    "e2e/test_exceptions_web.py",
    "e2e/test_scans_api.py",
    "e2e/test_orders_api.py",
    "integration/test_standing_orders.py",
    "e2e/test_orders_web.py",
    "e2e/test_standing_web.py",
    "integration/test_buyer_caps.py",
    "integration/test_campaigns.py",
    "e2e/test_cash_web.py",
    "e2e/test_schedule_pages.py",
    "integration/test_partial_refunds.py",
    "e2e/test_scans_web.py",
    "e2e/test_payment_switch.py",
    "integration/test_order_scopes.py",
    "e2e/test_campaigns_web.py",
    "integration/test_campaign_reports.py",
    "integration/test_payment_faults.py",
    "integration/test_trace_chain.py",
    "e2e/test_parcels_api.py",
    "e2e/test_webhooks_admin.py",
    "e2e/test_payment_webhooks.py",
    "integration/test_ledger_netting.py",
    "e2e/test_campaign_reports_web.py",
    "e2e/test_commissions_web.py",
    "e2e/test_proxy_web.py",
    "e2e/test_agent_day.py",
    "e2e/test_proxy_api.py",
)


def _shares_market(path: Path) -> bool:
    return path.relative_to(Path(__file__).parent).as_posix() in SHARED_MARKET


@pytest.fixture(scope="module")
def _module_connection(engine: Engine) -> Iterator:  # type: ignore[type-arg]
    """A SHARED_MARKET module's connection and transaction, rolled back after its last test."""
    connection = engine.connect()
    outer = connection.begin()
    yield connection
    outer.rollback()
    connection.close()


@pytest.fixture(scope="module")
def _module_market(_module_connection):  # type: ignore[no-untyped-def]
    """The market of a SHARED_MARKET module, built as the `market` fixture builds it (on the
    product's clock at NOW, with the tests' password hashing) in the module's transaction."""
    from tests import factories

    connection = _module_connection
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    with (
        pytest.MonkeyPatch.context() as mp,
        product_clock.installed(product_clock.TickingClock(NOW)),
        factories.bound(session),
    ):
        _use_fast_password_hashing(mp)
        village = lambda county, offset=0: factories.first_village(session, county, offset)  # noqa: E731
        market = factories.build_market(session, _user_maker(session), village)
    session.close()
    return market


@pytest.fixture()
def session(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints of one outer transaction rolled back after; the
    factories of tests/factories.py write through it for the whole test. In a SHARED_MARKET
    module that transaction is a SAVEPOINT of the module's, taken after its market is built."""
    from tests import factories

    shared = _shares_market(request.path)
    if shared:
        request.getfixturevalue("_module_market")
        connection = request.getfixturevalue("_module_connection")
        outer = connection.begin_nested()
    else:
        connection = engine.connect()
        outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    with factories.bound(session):
        yield session
    session.close()
    if outer.is_active:
        outer.rollback()
    if not shared:
        connection.close()


@pytest.fixture(scope="session")
def _app(database_url: str, localstripe):  # type: ignore[no-untyped-def]
    config = TestingConfig()
    config.DATABASE_URL = database_url
    # The real local Stripe server of this run; payment tests talk to it over HTTP.
    config.STRIPE_API_BASE = localstripe.url
    config.STRIPE_JS_URL = f"{localstripe.url}/js.stripe.com/v3/"
    app = create_app(config)
    yield app
    app.extensions["database"].engine.dispose()


def reset_limiter() -> None:
    """Forget every rate-limit count. The memory storage of `limits` expires counts on a timer
    thread that indexes dicts reset() clears (a KeyError in that thread now and then): let a
    running expiry finish and cancel the next before clearing."""
    timer = getattr(limiter._storage, "timer", None)
    if timer is not None:
        timer.cancel()
        timer.join()
    limiter.reset()


@pytest.fixture()
def app(_app, session: Session):  # type: ignore[no-untyped-def]
    """The app, every request of which uses the test's session."""
    db = _app.extensions["database"]
    db.lend_session(session)
    reset_limiter()
    # The process caches start cold, as after a restart: what an earlier test's rolled-back
    # transaction showed must not be kept under a freshness key this test reaches again.
    shop = _app.extensions.get("shop_cache")
    if shop is not None:
        shop.clear()
    # No app context is held around the test: each request gets its own, with a fresh `g`,
    # as in production (a test needing one outside a request opens it itself).
    yield _app
    db.lend_session(None)


@pytest.fixture()
def build_app(_app, session):  # type: ignore[no-untyped-def]
    """build_app(config) → another app from that config, serving the test's session (one Limiter
    and one Celery serve every app of the process: the test app's are put back after)."""
    from marketplace.tasks import celery_app

    saved = {k: getattr(limiter, k) for k in ("_storage", "_limiter", "_key_prefix", "enabled")}
    saved_flask_app = celery_app.conf.flask_app
    built = []

    def make(config: Config):  # type: ignore[no-untyped-def]
        app = create_app(config)
        app.extensions["database"].lend_session(session)
        built.append(app)
        return app

    yield make
    for key, value in saved.items():
        setattr(limiter, key, value)
    celery_app.conf.flask_app = saved_flask_app
    reset_limiter()
    for app in built:
        app.extensions["database"].engine.dispose()


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture()
def gateway(_app):  # type: ignore[no-untyped-def]
    """The app's payment gateway: a StripeGateway talking to this run's localstripe."""
    from marketplace.gateways import payment_gateway

    with _app.app_context():
        return payment_gateway()


@pytest.fixture()
def checkout_settings(_app):  # type: ignore[no-untyped-def]
    return _app.extensions["checkout_settings"]


@pytest.fixture()
def pickup_keys(_app):  # type: ignore[no-untyped-def]
    """The app's pickup code keys (its secret and attempt limit): read a pickup order's code
    with tests.factories.pickup_code_of(session, order, pickup_keys)."""
    return _app.extensions["pickup_code_keys"]


# --- the ledger's invariants after every order and payment test (issue 10, item 10) ------------

# The suites after each test of which services/ledger_checks.py must find no breach, in the
# test's own session (the `session` fixture, which the app's requests share) and in every
# database the module made for itself (new_database: the concurrency tests).
LEDGER_CHECKED = (
    "integration/test_checkout",
    "integration/test_commissions.py",
    "integration/test_agent_journey.py",
    "integration/test_partial_refunds.py",
    "integration/test_capture_for_less.py",
    "integration/test_payment_faults.py",
    "integration/test_ledger",
    "integration/test_order_",
    "integration/test_buyer_caps.py",
    "integration/test_payment_retry.py",
    "integration/test_refund_lookup.py",
    "integration/test_webhook_retries.py",
    "integration/test_notifications.py",
    "e2e/test_orders_",
    "e2e/test_payment_webhooks.py",
    "e2e/test_cart_checkout_web.py",
    "e2e/test_finance_",
    "e2e/test_payment_switch.py",
    "e2e/test_webhooks_admin.py",
    "e2e/test_pickup_codes_web.py",
    "integration/test_cash_remittance.py",
    "e2e/test_cash_web.py",
    "integration/test_intake.py",
    "e2e/test_intake_",
    "integration/test_proxy_orders.py",
    "e2e/test_proxy_",
    "integration/test_parcels.py",
    "e2e/test_parcels_",
    "integration/test_standing_orders.py",
    "e2e/test_standing_",
)
_CALL_FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ledger_unchecked(reason): the test builds a partial or broken ledger on purpose; the ledger's"
        " invariants are not checked after it",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


def _ledger_checked(path: Path) -> bool:
    return path.relative_to(Path(__file__).parent).as_posix().startswith(LEDGER_CHECKED)


@pytest.fixture(scope="module", autouse=True)
def _module_databases() -> int:
    """Where this module's databases start in DATABASES_MADE (autouse: set up before any other
    module fixture, so a module-scoped database is counted in)."""
    return len(DATABASES_MADE)


def _breaches_in(url: str) -> list[str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from services.ledger_checks import find_breaches

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
            if set(MigrationContext.configure(conn).get_current_heads()) != heads:
                return []  # a migration test's database, not at head: not the product's schema
        with Session(engine) as other:
            return [str(b) for b in find_breaches(other)]
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _ledger_invariants(request: pytest.FixtureRequest, _module_databases: int) -> Iterator[None]:
    """After each test of the order, payment and ledger suites: the ledger's invariants hold
    (services/ledger_checks.py) in the database the test wrote to, or the test fails, listing them."""
    if not _ledger_checked(request.path):
        yield
        return
    uses_session = "session" in request.fixturenames
    session: Session | None = request.getfixturevalue("session") if uses_session else None
    yield
    if request.node.get_closest_marker("ledger_unchecked") or request.node.stash.get(_CALL_FAILED, False):
        return
    from services.ledger_checks import find_breaches

    found: list[str] = []
    if session is not None:
        if not session.is_active:
            session.rollback()
        found += [str(b) for b in find_breaches(session)]
    for url in DATABASES_MADE[_module_databases:]:
        found += [f"{url.rsplit('/', 1)[-1]}: {b}" for b in _breaches_in(url)]
    if found:
        pytest.fail("the ledger's invariants do not hold after this test:\n  " + "\n  ".join(found))


@pytest.fixture(autouse=True)
def _product_clock() -> Iterator[None]:
    """Every test runs on the product's clock started at NOW and ticking at real speed."""
    with product_clock.installed(product_clock.TickingClock(NOW)):
        yield


@pytest.fixture()
def clock() -> Iterator[product_clock.FrozenClock]:
    """The product's clock standing at NOW, for tests that move time themselves (.advance, .set)."""
    with product_clock.frozen(NOW) as frozen:
        yield frozen


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):  # type: ignore[no-untyped-def]
    """scrypt costs ~70 ms a hash; no test depends on the cost ."""
    _use_fast_password_hashing(monkeypatch)


def _use_fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    from werkzeug.security import generate_password_hash

    fast = partial(generate_password_hash, method="pbkdf2:sha256:1")
    monkeypatch.setattr(accounts, "generate_password_hash", fast)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", fast("not-a-real-password"))


def count(session: Session, model, *where) -> int:  # type: ignore[no-untyped-def]
    """How many rows of `model` match `where`."""
    from sqlalchemy import func, select

    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def latest_sms_code(session: Session, phone: str) -> str:
    """The 6-digit code of the newest SMS the outbox gateway wrote for `phone`."""
    import re

    from sqlalchemy import select

    from domain import SmsMessage

    body = session.scalars(
        select(SmsMessage.body).where(SmsMessage.phone == phone).order_by(SmsMessage.id.desc())
    ).first()
    assert body is not None, "no SMS was written to the outbox"
    match = re.search(r"\d{6}", body)
    assert match is not None
    return match.group()


@pytest.fixture()
def village_point(session: Session, admin, first_village):  # type: ignore[no-untyped-def]
    """village_point(county_code, offset=0) → a village service point opened by the admin."""
    from domain import NodeKind

    def make(county: str, offset: int = 0):  # type: ignore[no-untyped-def]
        village = first_village(county, offset)
        return places.create_node(
            session,
            admin,
            NodeKind.VILLAGE_POINT,
            {"division_code": village.code, "name": f"{village.name}服务点"},
        )

    return make


@pytest.fixture()
def net(session: Session, admin, first_village):  # type: ignore[no-untyped-def]
    """Two counties of 梅州市 with centers, village points A and B in one, C in the other, a DC."""
    from tests.factories import build_network

    return build_network(session, admin, first_village)


@pytest.fixture()
def policy() -> accounts.AuthPolicy:
    return accounts.AuthPolicy()


@pytest.fixture()
def as_user(app):  # type: ignore[no-untyped-def]
    """as_user(user, english=False) → a test client logged in as the user through the login page."""

    def make(user, english: bool = False):  # type: ignore[no-untyped-def]
        client = app.test_client()
        resp = login(client, user.phone)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        if english:
            client.post("/lang", data={"lang": "en", "next": "/"})
        return client

    return make


@pytest.fixture()
def bearer(session: Session, policy):  # type: ignore[no-untyped-def]
    """bearer(user) → headers with a fresh API token for that user."""

    def make(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
        secret, _ = accounts.issue_api_token(session, phone=user.phone, password=TEST_PASSWORD, policy=policy)
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture()
def sms(session: Session) -> OutboxSmsGateway:
    """The outbox SMS gateway writing through the test's session."""
    return OutboxSmsGateway(lambda: session)


# --- data helpers -----------------------------------------------------------------------------

_phone_counter = iter(range(10_000_000))


def next_phone() -> str:
    return f"139{next(_phone_counter) + 10_000_000:08d}"[:11]


@pytest.fixture()
def make_user(session: Session):  # type: ignore[no-untyped-def]
    """make_user(Role.AGENT, node_id=…) → a saved user with that role (and scope)."""
    return _user_maker(session)


def _user_maker(session: Session):  # type: ignore[no-untyped-def]
    from tests.factories import RoleGrantFactory

    def make(
        *roles: Role,
        node_id: int | None = None,
        county_code: str | None = None,
        phone: str | None = None,
        password: str = TEST_PASSWORD,
        name: str = "",
    ) -> User:
        user = accounts.create_user(
            session, phone=phone or next_phone(), password=password, display_name=name, roles=()
        )
        for role in roles or (Role.BUYER,):
            scope = {"node": {"node_id": node_id}, "county": {"county_code": county_code}}.get(
                str(accounts.ROLE_SCOPE[role]), {}
            )
            RoleGrantFactory(user_id=user.id, role=role, **scope)
        session.commit()
        session.refresh(user)
        return user

    return make


@pytest.fixture()
def admin(make_user) -> User:  # type: ignore[no-untyped-def]
    return make_user(Role.ADMIN, name="省平台管理员")


# Real places used across tests (codes from seed/data/divisions.csv).
MEIXIAN = "441403"  # 梅州市梅县区
PINGYUAN = "441426"  # 梅州市平远县
YINGDE = "441881"  # 清远市英德市


@pytest.fixture()
def first_village(session: Session):  # type: ignore[no-untyped-def]
    """The first rural village (村委会) of a county, by code."""
    from tests.factories import first_village as pick

    return lambda county_code, offset=0: pick(session, county_code, offset)


def login(client, phone: str, password: str = TEST_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/auth/login", data={"phone": phone, "password": password})


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = PROJECT_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def reachable_redis(url: str) -> str:
    """`url`, once its Redis answers a PING; else the test fails saying how to start it."""
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {url}: `make services` starts it")
    return url


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private localstripe on 127.0.0.1 for the run (see devtools/localstripe.py): .url, .flush()."""
    from devtools.localstripe import start_localstripe

    server = start_localstripe(state_dir=tmp_path_factory.mktemp("localstripe"), idempotency=True)
    yield server
    server.stop()


@pytest.fixture()
def market(request, session, make_user, first_village):  # type: ignore[no-untyped-def]
    """Two farmers' shop and a buyer (tests/factories.py), for order and payment tests (built
    once per module in a SHARED_MARKET module, and read afresh through the test's session)."""
    from tests.factories import build_market, rebind_market

    if _shares_market(request.path):
        return rebind_market(request.getfixturevalue("_module_market"), session)
    return build_market(session, make_user, first_village)


@pytest.fixture()
def point(session, market, village_point):  # type: ignore[no-untyped-def]
    """The market's Meixian farmer's home village point."""
    from domain import SellerProfile

    node = village_point(MEIXIAN)
    profile = session.get(SellerProfile, market.shop.meixian_farmer.id)
    profile.home_point_id = node.id
    session.commit()
    return node


@pytest.fixture()
def agent(make_user, point):  # type: ignore[no-untyped-def]
    """The agent running that point."""
    return make_user(Role.AGENT, node_id=point.id, name="梅县村小二")


@pytest.fixture()
def world(session, admin, make_user, market, point, agent):  # type: ignore[no-untyped-def]
    """The logistics network around the market's 梅县 farmer (tests.factories.build_logistics):
    their point and its agent, 梅县's and 顺德's county centers, the 梅州 and 佛山 DCs, each
    with its staff."""
    from tests.factories import build_logistics

    return build_logistics(session, admin, make_user, point, agent)
