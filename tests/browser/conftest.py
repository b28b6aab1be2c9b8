"""Browser tests: `make run`'s server (migrated, seeded, under gunicorn) driven by headless
Debian Chromium through Playwright at a 360×740 phone viewport. The server pays through its own
localstripe (which also serves the fake Stripe.js) and gets its webhooks. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.localstripe import LocalStripe, start_localstripe
from marketplace.config import PROJECT_ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WEBHOOK_SECRET = "whsec_browser_" + "0" * 32
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """The server's own localstripe (payments and the fake Stripe.js the card form loads)."""
    server = start_localstripe(state_dir=tmp_path_factory.mktemp("browser-localstripe"), idempotency=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, browser_localstripe: LocalStripe) -> Iterator[str]:
    """A seeded server on a private port and a fresh SQLite file, the way `make run` starts it,
    paying through its own localstripe, which delivers its webhooks back to it."""
    instance = tmp_path_factory.mktemp("instance")
    port = _free_port()
    env = dict(
        os.environ,
        INSTANCE_PATH=str(instance),
        DATABASE_URL=f"sqlite:///{instance / 'marketplace.db'}",
        DEV_PAGES="1",
        # The whole browser run logs in many times from one IP.
        LOGIN_RATE_LIMIT="1000 per minute",
        STRIPE_API_BASE=browser_localstripe.url,
        STRIPE_JS_URL=f"{browser_localstripe.url}/js.stripe.com/v3/",
        STRIPE_SECRET_KEY=browser_localstripe.secret_key,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    for cmd in ([BIN / "alembic", "upgrade", "head"], [BIN / "flask", "--app", "wsgi", "seed"]):
        subprocess.run([str(c) for c in cmd], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    log = (instance / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "wsgi:app",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/", timeout=5).status_code == 200:
                break
        # A worker still importing the app (jieba, pypinyin: over a second) accepts but answers late.
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    else:
        proc.terminate()
        raise RuntimeError(f"server did not start; see {instance / 'server.log'}")
    webhook = browser_localstripe.register_webhook(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
    yield url
    browser_localstripe.unregister_webhook(webhook)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (Debian's chromium package)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture()
def phone_page(browser, server):  # type: ignore[no-untyped-def]
    """A fresh phone-sized browser context (360×740, Chinese first), one per test."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        java_script_enabled=True,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.base_url = server  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture()
def shot(artifacts_dir: Path):  # type: ignore[no-untyped-def]
    """shot(page, "name") saves a full-page screenshot under test-artifacts/browser/."""
    folder = artifacts_dir / "browser"
    folder.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:  # type: ignore[no-untyped-def]
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
