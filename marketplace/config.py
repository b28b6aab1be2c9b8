"""Configuration: one class reading the environment, with working local defaults.

Every setting is documented in docs/deploy.md. Nothing here assumes a single process:
sessions live in signed cookies, rate-limit counters in Redis when REDIS_URL is set.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


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


class Config:
    """Production and development settings, read from the environment."""

    def __init__(self) -> None:
        self.INSTANCE_PATH = str(_instance_path())
        self.SECRET_KEY = load_or_create_secret_key(Path(self.INSTANCE_PATH))
        self.DATABASE_URL = os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(self.INSTANCE_PATH) / 'marketplace.db'}"
        )
        self.SQL_ECHO = _bool("SQL_ECHO", False)
        self.REDIS_URL = os.environ.get("REDIS_URL", "")

        # Locale and time: Simplified Chinese first, English second, China Standard Time.
        self.BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "zh_Hans_CN")
        self.BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Asia/Shanghai")
        self.LANGUAGES = ["zh_Hans_CN", "en"]

        # Sessions: signed, HttpOnly, SameSite cookies. Secure whenever served over HTTPS.
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PREFERRED_URL_SCHEME = "https" if self.SESSION_COOKIE_SECURE else "http"
        self.MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 8 * 1024 * 1024))
        self.WTF_CSRF_TIME_LIMIT = None  # a farmer may leave a form open for hours

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

        # SMS: "outbox" writes messages to a table shown on /dev/sms.
        self.SMS_GATEWAY = os.environ.get("SMS_GATEWAY", "outbox")
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
        self.STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_localstripe")
        self.STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe")
        # Stripe.js for the card form: Stripe's own in production, localstripe's copy locally.
        self.STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", f"{self.STRIPE_API_BASE}/js.stripe.com/v3/")
        # Signs webhook deliveries; generated once into instance/ for local runs.
        self.STRIPE_WEBHOOK_SECRET = load_or_create_secret_key(
            Path(self.INSTANCE_PATH), "STRIPE_WEBHOOK_SECRET", prefix="whsec_"
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
        # Open payments are checked with the gateway after this long (the webhook safety net).
        self.RECONCILE_AFTER_MINUTES = int(os.environ.get("RECONCILE_AFTER_MINUTES", 5))
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
