"""Configuration: one class reading the environment, with working local defaults.

Every setting is documented in docs/deploy.md. Nothing here assumes a single process:
the signed session cookie carries only the id of a server-side login session (table
login_sessions; remembered ones last REMEMBER_COOKIE_DURATION, 30 days), rate-limit counters
live in Redis when REDIS_URL is set.

APP_ENV names the environment: `development` (the default: working local defaults, secrets
generated into instance/) or `production`, in which nothing is generated or assumed. There
`check_settings` (called by create_app) refuses to start, naming every missing or unsafe setting
at once; see `production_problems` and docs/deploy.md "Production requires".
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"

DEVELOPMENT = "development"
PRODUCTION = "production"
APP_ENVS = (DEVELOPMENT, PRODUCTION)
# The local defaults production must replace (localstripe's keys).
LOCALSTRIPE_SECRET_KEY = "sk_test_localstripe"  # noqa: S105 (a published placeholder, not a secret)
LOCALSTRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
MIN_SECRET_KEY_BYTES = 32


class ConfigError(RuntimeError):
    """The settings are unsafe or incomplete: the app refuses to start."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _hops() -> int | None:
    """PROXY_HOPS: how many proxies in front of the app append to X-Forwarded-For (None: unset)."""
    raw = os.environ.get("PROXY_HOPS")
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"PROXY_HOPS: {raw!r} is not a whole number of proxies") from None


def _instance_path() -> Path:
    return Path(os.environ.get("INSTANCE_PATH", str(DEFAULT_INSTANCE)))


def load_or_create_secret_key(instance_path: Path, name: str = "SECRET_KEY", prefix: str = "") -> str:
    """The secret `name` from the environment, else one generated once into instance/<name>.

    Several processes on one machine share the file; on several machines set the variable.
    """
    env = os.environ.get(name)
    if env:
        return env
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / name.lower()
    if not key_file.exists():
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(prefix + secrets.token_hex(32))
    return key_file.read_text().strip()


def _https_url(value: Any, *, origin_only: bool = False) -> bool:
    parts = urlsplit(str(value or ""))
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return False
    return not origin_only or (parts.path in ("", "/") and not parts.query and not parts.fragment)


def production_problems(settings: Mapping[str, Any]) -> list[str]:
    """Every setting that is missing or unsafe for production, as "NAME: what is wrong"."""
    problems: list[str] = []
    key = str(settings.get("SECRET_KEY") or "")
    if len(key.encode()) < MIN_SECRET_KEY_BYTES or len(set(key)) < 10:
        problems.append(
            f"SECRET_KEY: set a random secret of at least {MIN_SECRET_KEY_BYTES} bytes in the"
            " environment (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`),"
            " the same on every machine; the generated instance file is for development only"
        )
    database = str(settings.get("DATABASE_URL") or "")
    if not database or database.startswith("sqlite"):
        problems.append(
            "DATABASE_URL: set the PostgreSQL database (postgresql://user@host:5432/db);"
            " SQLite is for development"
        )
    if not settings.get("RATELIMIT_ENABLED", True):
        problems.append("RATELIMIT_ENABLED: the login and SMS rate limits must be on")
    if str(settings.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        problems.append(
            "RATELIMIT_STORAGE_URI: memory:// counts per process, so every worker multiplies the"
            " limits; set REDIS_URL (or this) to the shared Redis"
        )
    if not _https_url(settings.get("STRIPE_API_BASE")):
        problems.append("STRIPE_API_BASE: set https://api.stripe.com (localstripe is for development)")
    secret = str(settings.get("STRIPE_SECRET_KEY") or "")
    if secret == LOCALSTRIPE_SECRET_KEY or not secret.startswith(("sk_", "rk_")):
        problems.append("STRIPE_SECRET_KEY: set the account's secret key (sk_live_…), not localstripe's")
    publishable = str(settings.get("STRIPE_PUBLISHABLE_KEY") or "")
    if publishable == LOCALSTRIPE_PUBLISHABLE_KEY or not publishable.startswith("pk_"):
        problems.append(
            "STRIPE_PUBLISHABLE_KEY: set the account's publishable key (pk_live_…), not localstripe's"
        )
    if not _https_url(settings.get("STRIPE_JS_URL")):
        problems.append("STRIPE_JS_URL: set https://js.stripe.com/v3/")
    webhook = str(settings.get("STRIPE_WEBHOOK_SECRET") or "")
    if not webhook.startswith("whsec_") or len(webhook) < len("whsec_") + 16:
        problems.append(
            "STRIPE_WEBHOOK_SECRET: set the webhook endpoint's signing secret (whsec_…) in the"
            " environment; the generated instance file is for development only"
        )
    if not _https_url(settings.get("BASE_URL"), origin_only=True):
        problems.append(
            "BASE_URL: set the site's public address, https://host with no path (absolute links"
            " and photo URLs are built from it, never from the request's Host header)"
        )
    if settings.get("PROXY_HOPS") is None:
        problems.append(
            "PROXY_HOPS: set how many proxies append to X-Forwarded-For in front of the app"
            " (1 behind the nginx of docs/deploy.md; 0 if clients connect directly)"
        )
    if settings.get("DEV_PAGES"):
        problems.append("DEV_PAGES: must be off (/dev/sms shows every SMS code in clear)")
    return problems


def check_settings(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError naming every problem at once; create_app calls this before anything else."""
    env = settings.get("APP_ENV", DEVELOPMENT)
    problems: list[str] = []
    if env not in APP_ENVS:
        problems.append(f"APP_ENV: {env!r} is not one of {', '.join(APP_ENVS)}")
    hops = settings.get("PROXY_HOPS")
    if hops is not None and (not isinstance(hops, int) or hops < 0):
        problems.append(f"PROXY_HOPS: {hops!r} is not a number of proxies (0 or more)")
    if env == PRODUCTION:
        problems += production_problems(settings)
    if problems:
        raise ConfigError(
            f"Refusing to start (APP_ENV={env}): fix these settings (see docs/deploy.md):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


class Config:
    """Production and development settings, read from the environment (APP_ENV says which)."""

    def __init__(self) -> None:
        self.APP_ENV = os.environ.get("APP_ENV", DEVELOPMENT).strip().lower()
        production = self.APP_ENV == PRODUCTION
        self.INSTANCE_PATH = str(_instance_path())
        # Production secrets come from the environment only: nothing is generated there.
        instance = Path(self.INSTANCE_PATH)
        self.SECRET_KEY = (
            os.environ.get("SECRET_KEY", "") if production else load_or_create_secret_key(instance)
        )
        self.DATABASE_URL = os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(self.INSTANCE_PATH) / 'marketplace.db'}"
        )
        # PostgreSQL connections per process, no overflow (marketplace/db.py make_engine).
        self.DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", 15))
        self.SQL_ECHO = _bool("SQL_ECHO", False)
        self.REDIS_URL = os.environ.get("REDIS_URL", "")

        # Locale and time: Simplified Chinese first, English second, China Standard Time.
        self.BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "zh_Hans_CN")
        self.BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Asia/Shanghai")
        self.LANGUAGES = ["zh_Hans_CN", "en"]

        # Sessions: signed, HttpOnly, SameSite cookies. Secure whenever served over HTTPS.
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # Production is served over HTTPS only: Secure whatever SESSION_COOKIE_SECURE says.
        self.SESSION_COOKIE_SECURE = production or _bool("SESSION_COOKIE_SECURE", False)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        # "Stay logged in" lasts 30 days at most (seconds); the server-side session ends then too.
        self.REMEMBER_COOKIE_DURATION = 30 * 86400
        self.PREFERRED_URL_SCHEME = "https" if self.SESSION_COOKIE_SECURE else "http"
        self.MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 8 * 1024 * 1024))
        self.WTF_CSRF_TIME_LIMIT = None  # a farmer may leave a form open for hours

        # Behind proxies: how many append to X-Forwarded-For (and set X-Forwarded-Proto). The
        # client address, which the rate limits count by, is the one the outermost trusted proxy
        # saw; anything a client writes before it is ignored. 0 (development's default) trusts
        # nobody; production must say (1 behind docs/deploy.md's nginx).
        hops = _hops()
        self.PROXY_HOPS = hops if hops is not None or production else 0
        # The site's public address (https://host): absolute links (payment return pages) and
        # API photo URLs are built from it, never from the Host header. Required in production;
        # empty in development means the request's own address (a laptop's loopback server).
        self.BASE_URL = os.environ.get("BASE_URL", "").strip().rstrip("/")

        # Rate limits: shared across processes through Redis; memory only for one dev process.
        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", self.REDIS_URL or "memory://")
        self.RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "gdm")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "20 per minute")
        self.SMS_RATE_LIMIT = os.environ.get("SMS_RATE_LIMIT", "10 per hour")

        # Task queue: Celery on Redis in production, eager (inline) in the embedded default.
        self.CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
        self.CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "")
        # Periodic jobs (services/jobs.py): Celery beat runs them in production; EMBEDDED_JOBS
        # starts the in-process scheduler instead (make run sets it), waking every tick.
        self.EMBEDDED_JOBS = _bool("EMBEDDED_JOBS", False)
        self.JOBS_TICK_SECONDS = float(os.environ.get("JOBS_TICK_SECONDS", 5))
        # A delivered or picked-up sub-order completes by itself after this many days.
        self.AUTO_COMPLETE_DAYS = int(os.environ.get("AUTO_COMPLETE_DAYS", 7))
        # Parcels waiting at a village point: one reminder after these days, returned after these.
        self.PARCEL_REMIND_DAYS = int(os.environ.get("PARCEL_REMIND_DAYS", 3))
        self.PARCEL_RETURN_DAYS = int(os.environ.get("PARCEL_RETURN_DAYS", 7))
        # Standing orders: a cycle's cut-off hour (China time, the day before it is due) and how far
        # ahead cycles are prepared for the agent to confirm.
        self.STANDING_ORDER_CUTOFF_HOUR = int(os.environ.get("STANDING_ORDER_CUTOFF_HOUR", 22))
        self.STANDING_ORDER_PREPARE_DAYS = int(os.environ.get("STANDING_ORDER_PREPARE_DAYS", 2))
        # Cold chain: a run of readings outside the storage class's range for longer than this is
        # an excursion (services/logistics/coldchain.py, readings.find_excursions).
        self.COLD_CHAIN_GRACE_MINUTES = int(os.environ.get("COLD_CHAIN_GRACE_MINUTES", 30))
        # A logger that sent nothing for this long alerts its node's staff (flag-silent-loggers job).
        self.COLD_CHAIN_SILENT_HOURS = float(os.environ.get("COLD_CHAIN_SILENT_HOURS", 2))
        # Parcels stuck in the network (flag-stuck-parcels job): waiting at a node this many hours
        # past its next leg's planned departure, or on a leg under way this long past its planned
        # arrival (services/logistics/exceptions.py).
        self.STUCK_PARCEL_HOURS = float(os.environ.get("STUCK_PARCEL_HOURS", 24))
        self.LATE_LEG_GRACE_HOURS = float(os.environ.get("LATE_LEG_GRACE_HOURS", 2))

        # Distances for vehicle routes (services/logistics/distance.py): "haversine" is the
        # great-circle distance times ROAD_FACTOR, driven at ROAD_SPEED_KMH; a road-network
        # provider plugs in under another name (marketplace/gateways.py). The day's routes are
        # solved for at most ROUTE_TIME_LIMIT_SECONDS (services/logistics/routes.py).
        self.DISTANCE_MATRIX = os.environ.get("DISTANCE_MATRIX", "haversine")
        self.ROAD_FACTOR = float(os.environ.get("ROAD_FACTOR", 1.3))
        self.ROAD_SPEED_KMH = float(os.environ.get("ROAD_SPEED_KMH", 40.0))
        self.ROUTE_TIME_LIMIT_SECONDS = float(os.environ.get("ROUTE_TIME_LIMIT_SECONDS", 3.0))

        # SMS: "outbox" writes messages to a table shown on /dev/sms.
        self.SMS_GATEWAY = os.environ.get("SMS_GATEWAY", "outbox")
        # Buyers' order messages (services/notify.py): "outbox" (the SMS outbox) or "sms" (the
        # SMS_GATEWAY's provider). Pickup codes are derived from PICKUP_CODE_SECRET (SECRET_KEY
        # when empty); changing it changes every pickup code.
        self.NOTIFICATION_CHANNEL = os.environ.get("NOTIFICATION_CHANNEL", "outbox")
        self.PICKUP_CODE_SECRET = os.environ.get("PICKUP_CODE_SECRET", "")
        self.SMS_CODE_TTL_SECONDS = int(os.environ.get("SMS_CODE_TTL_SECONDS", 300))
        self.SMS_CODE_MAX_ATTEMPTS = int(os.environ.get("SMS_CODE_MAX_ATTEMPTS", 5))
        self.SMS_CODES_PER_PHONE_PER_HOUR = int(os.environ.get("SMS_CODES_PER_PHONE_PER_HOUR", 5))
        self.SMS_CODE_RESEND_SECONDS = int(os.environ.get("SMS_CODE_RESEND_SECONDS", 60))
        self.LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", 5))
        self.LOGIN_LOCK_SECONDS = int(os.environ.get("LOGIN_LOCK_SECONDS", 900))
        self.API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", 90))

        # Product photos: re-encoded files under MEDIA_ROOT, served at MEDIA_URL_PREFIX (a CDN's
        # address in front of /media may replace it) with year-long cache lifetimes.
        self.MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local")
        self.MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(Path(self.INSTANCE_PATH) / "media"))
        self.MEDIA_URL_PREFIX = os.environ.get("MEDIA_URL_PREFIX", "/media").rstrip("/")
        self.MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024))

        # Payments: the Stripe HTTP API at STRIPE_API_BASE. `make run` and `make test` start
        # localstripe there; production sets https://api.stripe.com and real keys.
        self.STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:8420").rstrip("/")
        self.STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", LOCALSTRIPE_SECRET_KEY)
        self.STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", LOCALSTRIPE_PUBLISHABLE_KEY)
        # Stripe.js for the card form: Stripe's own in production, localstripe's copy locally.
        self.STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", f"{self.STRIPE_API_BASE}/js.stripe.com/v3/")
        # Signs webhook deliveries; generated once into instance/ for local runs.
        self.STRIPE_WEBHOOK_SECRET = (
            os.environ.get("STRIPE_WEBHOOK_SECRET", "")
            if production
            else load_or_create_secret_key(Path(self.INSTANCE_PATH), "STRIPE_WEBHOOK_SECRET", prefix="whsec_")
        )
        self.STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", 10))
        self.STRIPE_MAX_RETRIES = int(os.environ.get("STRIPE_MAX_RETRIES", 2))
        # Pooled connections to the gateway per process: at least the worker's thread count.
        self.STRIPE_HTTP_POOL_SIZE = int(os.environ.get("STRIPE_HTTP_POOL_SIZE", 32))
        # Checkout: see services.orders.pricing.CheckoutSettings.
        self.SHIPPING_FEE_RULES = os.environ.get("SHIPPING_FEE_RULES", "")
        self.FREE_SHIPPING_FROM_FEN = int(os.environ.get("FREE_SHIPPING_FROM_FEN", 9900))
        self.PLATFORM_COMMISSION_BPS = int(os.environ.get("PLATFORM_COMMISSION_BPS", 500))
        self.PAYMENT_WINDOW_MINUTES = int(os.environ.get("PAYMENT_WINDOW_MINUTES", 30))
        self.PAYMENT_CURRENCY = os.environ.get("PAYMENT_CURRENCY", "cny")
        # One checkout's most, in fen: the gateway's maximum charge (Stripe: 99,999,999).
        self.MAX_CHECKOUT_TOTAL_FEN = int(os.environ.get("MAX_CHECKOUT_TOTAL_FEN", 99_999_999))
        # Stock held unpaid (0 turns a cap off): per buyer, at most this many open unpaid orders,
        # units in all and units of one product; orders placed per ORDER_RATE_WINDOW_MINUTES.
        self.MAX_UNPAID_ORDERS = int(os.environ.get("MAX_UNPAID_ORDERS", 3))
        self.MAX_UNPAID_UNITS = int(os.environ.get("MAX_UNPAID_UNITS", 50))
        self.MAX_UNPAID_UNITS_PER_PRODUCT = int(os.environ.get("MAX_UNPAID_UNITS_PER_PRODUCT", 30))
        self.ORDER_RATE_LIMIT = int(os.environ.get("ORDER_RATE_LIMIT", 10))
        self.ORDER_RATE_WINDOW_MINUTES = int(os.environ.get("ORDER_RATE_WINDOW_MINUTES", 10))
        # An order holding more than LARGE_ORDER_UNITS units is held this long instead.
        self.LARGE_ORDER_UNITS = int(os.environ.get("LARGE_ORDER_UNITS", 20))
        self.LARGE_ORDER_PAYMENT_WINDOW_MINUTES = int(
            os.environ.get("LARGE_ORDER_PAYMENT_WINDOW_MINUTES", 10)
        )
        # A village agent's proxy orders for others: their own, larger caps and rate.
        self.MAX_PROXY_UNPAID_ORDERS = int(os.environ.get("MAX_PROXY_UNPAID_ORDERS", 30))
        self.MAX_PROXY_UNPAID_UNITS = int(os.environ.get("MAX_PROXY_UNPAID_UNITS", 500))
        self.PROXY_ORDER_RATE_LIMIT = int(os.environ.get("PROXY_ORDER_RATE_LIMIT", 60))
        # Open payments are checked with the gateway after this long (the webhook safety net).
        self.RECONCILE_AFTER_MINUTES = int(os.environ.get("RECONCILE_AFTER_MINUTES", 5))
        # A webhook event whose processing fails is tried this many times in all (backoff 1 min,
        # 5 min, 30 min, 2 h, 12 h), then listed for admins on /admin/webhooks.
        self.WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", 6))
        self.PAYOUT_HOLDING_DAYS = int(os.environ.get("PAYOUT_HOLDING_DAYS", 7))

        # Shop list pages (home, category, search) are kept rendered per worker this long;
        # 0 turns the cache off. Product pages are never cached.
        self.SHOP_PAGE_CACHE_SECONDS = float(os.environ.get("SHOP_PAGE_CACHE_SECONDS", 30))
        # Static files carry a content hash in their URL, so browsers may keep them a year.
        self.SEND_FILE_MAX_AGE_DEFAULT = 365 * 86400

        # Load the search dictionaries (jieba, pypinyin) when the app starts, not on the first
        # search a buyer makes (about a second per process).
        self.WARM_UP = _bool("WARM_UP", True)

        # Developer pages (SMS outbox, shows every code sent). Off unless asked for: `make run` sets it.
        self.DEV_PAGES = _bool("DEV_PAGES", False)

        # OpenAPI (flask-smorest): document at /api/openapi.json, docs page at /api/docs.
        self.API_TITLE = "Guangdong Rural Marketplace API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api"
        self.OPENAPI_JSON_PATH = "openapi.json"
        # Swagger UI's files come from the pinned swagger-ui-bundle package and are served by the
        # app itself (marketplace/api/__init__.py): offline and mainland networks reach no CDN.
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = "/api/docs/swagger-ui/"
        self.API_SPEC_OPTIONS = {
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                }
            }
        }
        self.TESTING = False


class TestingConfig(Config):
    """Settings for the test suite: DATABASE_URL comes from the test harness."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        self.EMBEDDED_JOBS = False  # a test that wants the scheduler turns it on itself
        self.WTF_CSRF_ENABLED = False
        self.DEV_PAGES = True
        self.DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "sqlite://")
        self.RATELIMIT_STORAGE_URI = os.environ.get("TEST_RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_KEY_PREFIX = f"gdm-test-{os.getpid()}"
        self.SHOP_PAGE_CACHE_SECONDS = 0.0
        self.WARM_UP = False
        # Never the developer's instance/media: tests that look at files set their own directory.
        self.MEDIA_ROOT = os.environ.get(
            "TEST_MEDIA_ROOT", str(Path(tempfile.gettempdir()) / f"gdm-test-media-{os.getpid()}")
        )
        # The test harness starts a private localstripe and points this at it.
        self.STRIPE_API_BASE = os.environ.get("TEST_STRIPE_API_BASE", "http://127.0.0.1:9")
        self.STRIPE_WEBHOOK_SECRET = "whsec_test_" + "0" * 32
        self.STRIPE_MAX_RETRIES = 1
        self.ROUTE_TIME_LIMIT_SECONDS = 0.5
