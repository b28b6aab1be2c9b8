"""The payment gateway the demo's orders are paid through: the localstripe `make run` serves.

`make run` seeds before it starts its localstripe (python -m devtools.localstripe on
STRIPE_API_BASE), and that localstripe keeps its objects in instance/localstripe.pickle and loads
them when it starts. So the seed pays through a localstripe on that same state file: the one
already answering at STRIPE_API_BASE (`make run` running in another terminal, the browser tests'
server), or else one it starts on a free port for the time of the seed and stops after (its
state is written to the file on every change). The server's localstripe then knows every intent
and refund of the demo's orders, and a refund of a seeded order goes through.

The state file starts from scratch only when nothing in the database refers to anything at the
gateway yet (`history.gateway_unused`: a new database); otherwise it is loaded, as `make run`
does. The seed runs devtools' localstripe as its own process (`python -m devtools.localstripe`)
and never imports devtools: like the Makefile, it only starts the tool.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests  # type: ignore[import-untyped]

from marketplace.config import PROJECT_ROOT
from marketplace.gateways import build_payment_gateway
from services.payments.gateway import PaymentGateway

STATE_FILE = "localstripe.pickle"  # in the instance folder, as `make run` passes it
START_TIMEOUT = 30.0  # seconds
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class DemoGateway:
    gateway: PaymentGateway
    url: str  # the localstripe's address (its test pages play the buyer's wallet)
    started: bool  # started by the seed for its own run


def is_localstripe(url: str) -> bool:
    """Whether a localstripe answers at `url` (it serves a copy of Stripe.js; Stripe does not)."""
    try:
        return requests.get(f"{url}/js.stripe.com/v3/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_gateway(config: Mapping[str, Any], *, fresh: bool) -> Iterator[DemoGateway | None]:
    """The gateway to pay the demo's orders through, for the time of the block; None when
    STRIPE_API_BASE is neither a localstripe nor on this machine (the history needs one).

    `fresh`: the database refers to nothing at the gateway, so a localstripe started here may
    begin with an empty state file."""
    base = str(config["STRIPE_API_BASE"]).rstrip("/")
    if urlsplit(base).hostname not in LOOPBACK:
        yield None  # Stripe itself, or a server elsewhere: not the demo's to fill
        return
    if is_localstripe(base):
        yield DemoGateway(build_payment_gateway(config), base, started=False)
        return
    instance = Path(config["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "devtools.localstripe",
        "--port",
        str(port),
        "--state-file",
        str(instance / STATE_FILE),
        "--idempotency",
        "--quiet",
        "--exit-with-parent",
    ]
    if fresh:
        command.append("--from-scratch")
    log_path = instance / "localstripe-seed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  # our own module, fixed arguments
            command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not is_localstripe(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"localstripe did not start for the seed: see {log_path}")
            time.sleep(0.1)
        yield DemoGateway(build_payment_gateway({**config, "STRIPE_API_BASE": url}), url, started=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
