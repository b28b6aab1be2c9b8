"""Run localstripe 1.15.10 for local development and tests, extended where it lacks Stripe's flows.

Foreground (`make run`, a terminal):
    .venv/bin/python -m devtools.localstripe --port 8420 --state-file instance/localstripe.pickle \
        --webhook-url http://127.0.0.1:5000/webhooks/stripe \
        --webhook-secret-file instance/stripe_webhook_secret
From Python / pytest (tests/conftest.py's `localstripe` fixture):
    with start_localstripe() as ls:   # free port, fresh state, waits until it answers
        StripeGateway(ls.url, ls.secret_key) ...

Run it as a module (`-m devtools.localstripe`), never by its path: run as a script, this file
would sit first on sys.path and shadow the `localstripe` package it extends.

What localstripe does on its own (checked against its source and by tests/integration):
- Any secret key of the form sk_<something> is accepted (Bearer or Basic); currency is free text,
  so "cny" with amounts in fen works.
- Test cards: payment_method="pm_card_visa" (4242…), or create one with POST /v1/payment_methods
  type=card and exactly card[number], card[exp_month], card[exp_year], card[cvc]
  (LocalStripe.create_card_payment_method). 3-D Secure cards (4000002760003184, 4000002500003155,
  4000000000003220, …) make confirm return requires_action with next_action.type use_stripe_sdk;
  POST /v1/payment_intents/{id}/_authenticate (client_secret, success) finishes it
  (LocalStripe.authenticate). pm_card_chargeCustomerFail (4000000000000341) is declined: HTTP 402.
- Webhooks: POST /_config/webhooks/{id} with url, secret and optionally events[]; each event is
  POSTed about 1 s later with `Stripe-Signature: t=<event.created>,v1=<hex HMAC-SHA256 of
  "t.body">` (Stripe's scheme, one v1, no v0). Webhooks survive DELETE /_config/data.
- It ignores Idempotency-Key: the same key twice creates two objects.
- It binds every interface and keeps its state in /tmp/localstripe.pickle, shared by every copy.

What this launcher changes (in the localstripe process only; the product never sees it):
- Binds 127.0.0.1 (or --host) and keeps its state in --state-file.
- PaymentIntents: accepts and returns `description` and `payment_method_types` (localstripe
  dropped them or answered 400); accepts `return_url` (with confirm=true, as Stripe) and
  `payment_method_data`; confirm accepts payment_method / payment_method_data / return_url
  (localstripe answered 500/400); GET /v1/payment_intents?customer= filters (it answered 400);
  reports amount_received and amount_capturable; capture refuses intents not in requires_capture.
  POST /v1/payment_intents/{id} (update) takes payment_method_types, payment_method_options,
  metadata and description, only while the intent is not paid, processing or cancelled (400
  otherwise, as Stripe); types that leave out the attached payment method's type detach it, so
  a wallet's QR code or redirect shown before can no longer be paid (wallet_paid answers 400)
  and the intent is requires_payment_method again.
- Declines look like Stripe's: HTTP 402, error.type card_error, code card_declined, a
  decline_code and the PaymentIntent. 4000000000000002 / pm_card_chargeDeclined /
  pm_card_visa_chargeDeclined (generic_decline) and 4000000000009995 /
  pm_card_chargeDeclinedInsufficientFunds (insufficient_funds) are declined at charge time, as on
  Stripe; pm_card_authenticationRequired and pm_card_threeDSecure2Required exist.
- Wallets (localstripe has none): payment_method_types wechat_pay or alipay, confirmed with
  payment_method_data[type]=<wallet>, go to requires_action with Stripe's next_action shapes
  (wechat_pay_display_qr_code: data, hosted_instructions_url, image_data_url, image_url_png,
  image_url_svg; alipay_handle_redirect: url, return_url, native_url, native_data). The buyer's
  side is simulated by test-only endpoints (no auth):
      POST /_test/payment_intents/{id}/wallet_paid    → succeeded (or requires_capture),
                                                        webhook payment_intent.succeeded
      POST /_test/payment_intents/{id}/wallet_failed  → requires_payment_method with
                                                        last_payment_error, webhook
                                                        payment_intent.payment_failed
      GET  /_test/payment_intents/{id}/wallet         a page with "pay" and "fail" buttons
                                                      (the hosted instructions / Alipay url)
      GET  /_test/payment_intents/{id}/qr.png|qr.svg  the QR image (a placeholder square when
                                                      the qrcode package is not installed)
- Refunds created with POST /v1/refunds fire refund.created and charge.refunded (localstripe
  fires no refund or charge events).
- DELETE /_config/webhooks/{id} removes a webhook.
- GET /v1/refunds?payment_intent=pi_… lists the refunds of that PaymentIntent (newest first, with
  the metadata they were created with), 404 for an unknown intent; localstripe answered 500 for
  an intent without a charge.
- --idempotency (start_localstripe(idempotency=True)): a POST /v1/… repeating an Idempotency-Key
  gets the first response again (header Idempotent-Replayed: true); the same key with other
  parameters gets 400 idempotency_error, as on Stripe. Responses 5xx are not kept. Keys are
  forgotten 24 hours (IDEMPOTENCY_RETENTION) after their first use, by this server's clock: the
  same key a day later makes a new object, as Stripe may once it has pruned the key.
- This server's clock is the machine's plus an offset that tests move (it only ages idempotency
  keys; objects keep the machine's time):
      POST /_test/clock  advance=<seconds>  → moves it forward; reset=1 → back to the machine's;
                                               answers {"now": <unix time>, "offset": <seconds>}
  From Python: LocalStripe.advance_clock(seconds), LocalStripe.reset_clock().
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

TEST_SECRET_KEY = "sk_test_localstripe"  # noqa: S105  # localstripe takes any sk_… key
# Stripe keeps an Idempotency-Key at least this long, then may prune it; this server forgets it then.
IDEMPOTENCY_RETENTION = 24 * 3600  # seconds
WALLETS = ("wechat_pay", "alipay")
# Stripe's documented decline test cards that localstripe lets through, and their decline codes.
DECLINED_CARDS = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000341": "generic_decline",
}
EXTRA_TEST_PAYMENT_METHODS = {
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
}


# --- the Python API (tests, scripts) -----------------------------------------------------------


class LocalStripe:
    """A running localstripe subprocess."""

    secret_key = TEST_SECRET_KEY

    def __init__(
        self,
        *,
        url: str,
        port: int,
        state_file: Path,
        log_file: Path,
        process: subprocess.Popen[bytes],
        owned_dir: Path | None = None,
    ):
        self.url = url
        self.port = port
        self.state_file = state_file
        self.log_file = log_file
        self.process = process
        self._owned_dir = owned_dir

    def __enter__(self) -> LocalStripe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.secret_key}"} if auth else {}
        response = requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"localstripe {method} {path}: HTTP {response.status_code} {response.text}")
        return response

    def flush(self) -> None:
        """Forget every object (DELETE /_config/data); webhooks stay registered."""
        self._call("DELETE", "/_config/data", auth=False)

    def register_webhook(
        self, url: str, secret: str, events: Iterable[str] | None = None, *, webhook_id: str | None = None
    ) -> str:
        """Deliver events (all, or these types) to `url`, signed with `secret`; returns the id."""
        webhook_id = webhook_id or f"wh_{uuid.uuid4().hex[:12]}"
        data: list[tuple[str, str]] = [("url", url), ("secret", secret)]
        data += [("events[]", event) for event in events or ()]
        self._call("POST", f"/_config/webhooks/{webhook_id}", auth=False, data=data)
        return webhook_id

    def unregister_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", f"/_config/webhooks/{webhook_id}", auth=False)

    def create_card_payment_method(
        self, number: str, *, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123"
    ) -> str:
        """A card PaymentMethod with this test number; returns its id."""
        data = {
            "type": "card",
            "card[number]": number,
            "card[exp_month]": str(exp_month),
            "card[exp_year]": str(exp_year),
            "card[cvc]": cvc,
        }
        return str(self._call("POST", "/v1/payment_methods", data=data).json()["id"])

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool = True) -> dict[str, Any]:
        """Finish (or fail) the 3-D Secure step of an intent in requires_action."""
        data = {"client_secret": client_secret, "success": "true" if success else "false"}
        return dict(self._call("POST", f"/v1/payment_intents/{intent_id}/_authenticate", data=data).json())

    def wallet_paid(self, intent_id: str) -> dict[str, Any]:
        """The buyer scans the QR code (or follows the redirect) and pays."""
        return dict(self._call("POST", f"/_test/payment_intents/{intent_id}/wallet_paid", auth=False).json())

    def wallet_failed(self, intent_id: str) -> dict[str, Any]:
        """The wallet refuses the payment (or the buyer gives up)."""
        return dict(
            self._call("POST", f"/_test/payment_intents/{intent_id}/wallet_failed", auth=False).json()
        )

    def advance_clock(self, seconds: float) -> float:
        """Move this server's clock forward (idempotency keys age with it); returns its offset."""
        data = {"advance": str(float(seconds))}
        return float(self._call("POST", "/_test/clock", auth=False, data=data).json()["offset"])

    def reset_clock(self) -> None:
        """Put this server's clock back on the machine's."""
        self._call("POST", "/_test/clock", auth=False, data={"reset": "1"})

    def refunds(self, payment_intent: str) -> list[dict[str, Any]]:
        """Every refund of a PaymentIntent, newest first (GET /v1/refunds?payment_intent=)."""
        params = {"payment_intent": payment_intent, "limit": "100"}
        return list(self._call("GET", "/v1/refunds", params=params).json()["data"])

    def stop(self) -> None:
        """Stop the process (and remove its state, when start_localstripe chose the directory)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/js.stripe.com/v3/", timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    return False


def start_localstripe(
    port: int | None = None,
    state_dir: Path | None = None,
    *,
    idempotency: bool = False,
    timeout: float = 30.0,
) -> LocalStripe:
    """Start a private localstripe on 127.0.0.1 (a free port unless given) with a fresh state."""
    owned_dir = None if state_dir is not None else Path(tempfile.mkdtemp(prefix="localstripe-"))
    directory = Path(state_dir) if state_dir is not None else owned_dir
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    last_log = ""
    for _attempt in range(1 if port else 3):
        chosen = port or free_port()
        state_file = directory / f"localstripe-{chosen}.pickle"
        state_file.unlink(missing_ok=True)
        log_file = directory / f"localstripe-{chosen}.log"
        command = [
            sys.executable,
            "-m",
            "devtools.localstripe",
            "--port",
            str(chosen),
            "--state-file",
            str(state_file),
            "--from-scratch",
            "--exit-with-parent",
        ]
        if idempotency:
            command.append("--idempotency")
        with log_file.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603  # our own module, fixed arguments
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{chosen}"
        if _wait_until_up(url, process, timeout):
            return LocalStripe(
                url=url,
                port=chosen,
                state_file=state_file,
                log_file=log_file,
                process=process,
                owned_dir=owned_dir,
            )
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        last_log = log_file.read_text(errors="replace")[-2000:]
    if owned_dir is not None:
        shutil.rmtree(owned_dir, ignore_errors=True)
    raise RuntimeError(f"localstripe did not start:\n{last_log}")


# --- inside the localstripe process ------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _qr_png(data: str) -> bytes:
    """A QR code of `data` when the qrcode package is there, else a plain 21×21 grey square."""
    try:
        import io

        import qrcode  # type: ignore[import-not-found]

        buffer = io.BytesIO()
        qrcode.make(data).save(buffer, format="PNG")
        return buffer.getvalue()
    except ImportError:
        size = 21
        raw = b"".join(b"\x00" + b"\x80" * size for _ in range(size))
        header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b"")
        )


def build_app(state_file: Path, base_url: str, *, idempotency: bool = False) -> Any:
    """Import localstripe, apply the extensions described at the top, return its aiohttp app."""
    import pickle

    from aiohttp import web
    from localstripe import resources as R
    from localstripe import webhooks
    from localstripe.errors import UserError

    # State file: localstripe hard-codes /tmp/localstripe.pickle in these two methods.
    def try_load_from_disk(self: Any) -> None:
        try:
            with state_file.open("rb") as fh:
                old = pickle.load(fh)  # noqa: S301  # localstripe's own state file
        except FileNotFoundError:
            return
        self.clear()
        self.update(old)

    def dump_to_disk(self: Any) -> None:
        tmp = state_file.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, state_file)

    R.Store.try_load_from_disk = try_load_from_disk
    R.Store.dump_to_disk = dump_to_disk

    PI = R.PaymentIntent
    PM = R.PaymentMethod

    def bad_request(message: str, **contents: Any) -> UserError:
        return UserError(400, message, contents or None)

    def new_wallet_payment_method(payment_method_data: Any, allowed: list[str]) -> str:
        kind = payment_method_data.get("type") if isinstance(payment_method_data, dict) else None
        if kind not in WALLETS or kind not in allowed:
            raise bad_request(
                f"payment_method_data[type] must be one of this PaymentIntent's payment_method_types "
                f"that localstripe simulates ({', '.join(WALLETS)}); got {kind!r}."
            )
        pm = PM.__new__(PM)
        pm.type = kind
        pm.billing_details = {}
        pm.customer = None
        pm.metadata = {}
        setattr(pm, kind, {})
        R.StripeObject.__init__(pm)  # id, created, stored
        return str(pm.id)

    # PaymentIntent: keep the Stripe parameters localstripe dropped or refused.
    original_init = PI.__init__

    def pi_init(
        self: Any,
        payment_method_types: Any = None,
        payment_method_options: Any = None,
        payment_method_data: Any = None,
        description: Any = None,
        return_url: Any = None,
        **kwargs: Any,
    ) -> None:
        types = ["card"] if payment_method_types is None else payment_method_types
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise UserError(400, "Bad request")
        unknown = sorted(set(types) - {"card", *WALLETS})
        if unknown:
            raise bad_request(
                f"The payment method type {unknown[0]!r} is invalid.", param="payment_method_types"
            )
        if description is not None and not isinstance(description, str):
            raise UserError(400, "Bad request")
        if payment_method_data is not None and kwargs.get("payment_method") is not None:
            raise bad_request("Pass either payment_method or payment_method_data, not both.")
        original_init(
            self, payment_method_types=types, payment_method_options=payment_method_options, **kwargs
        )
        self.payment_method_types = types
        self.payment_method_options = payment_method_options or {}
        self.description = description
        self._return_url = return_url
        if payment_method_data is not None:
            self.payment_method = new_wallet_payment_method(payment_method_data, types)

    PI.__init__ = pi_init

    original_create = PI._api_create

    def pi_create(cls: Any, confirm: Any = None, return_url: Any = None, **data: Any) -> Any:
        if return_url is not None and R.try_convert_to_bool(confirm) is not True:
            raise bad_request("return_url can only be passed when confirm is true.", param="return_url")
        if return_url is not None:
            data["return_url"] = return_url
        return original_create(confirm=confirm, **data)

    PI._api_create = classmethod(pi_create)

    def amount_capturable(self: Any) -> int:
        return int(self.amount) if self.status == "requires_capture" else 0

    def amount_received(self: Any) -> int:
        if self.status != "succeeded":
            return 0
        return int(getattr(self, "_amount_captured", None) or self.amount)

    PI.amount_capturable = property(amount_capturable)
    PI.amount_received = property(amount_received)

    def wallet_next_action(self: Any, kind: str) -> dict[str, Any]:
        page = f"{base_url}/_test/payment_intents/{self.id}/wallet"
        if kind == "wechat_pay":
            png = base64.b64encode(_qr_png(f"weixin://wxpay/bizpayurl?pr={self.id}")).decode()
            return {
                "type": "wechat_pay_display_qr_code",
                "wechat_pay_display_qr_code": {
                    "data": f"weixin://wxpay/bizpayurl?pr={self.id}",
                    "hosted_instructions_url": page,
                    "image_data_url": f"data:image/png;base64,{png}",
                    "image_url_png": f"{base_url}/_test/payment_intents/{self.id}/qr.png",
                    "image_url_svg": f"{base_url}/_test/payment_intents/{self.id}/qr.svg",
                },
            }
        return {
            "type": "alipay_handle_redirect",
            "alipay_handle_redirect": {
                "native_data": None,
                "native_url": None,
                "return_url": self._return_url,
                "url": page,
            },
        }

    original_confirm = PI._confirm

    def pi_confirm(self: Any, on_failure_now: Any) -> None:
        pm = PM._api_retrieve(self.payment_method)
        if pm.type in WALLETS:
            self._authentication_failed = False
            self.next_action = wallet_next_action(self, pm.type)
            return
        original_confirm(self, on_failure_now)

    PI._confirm = pi_confirm

    def retrieve_intent(id: Any) -> Any:
        if not isinstance(id, str) or not id.startswith("pi_"):
            raise UserError(400, "Bad request")
        return PI._api_retrieve(id)

    def api_confirm(
        id: Any = None,
        payment_method: Any = None,
        payment_method_data: Any = None,
        return_url: Any = None,
        **kwargs: Any,
    ) -> Any:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        obj = retrieve_intent(id)
        if payment_method is not None and payment_method_data is not None:
            raise bad_request("Pass either payment_method or payment_method_data, not both.")
        if payment_method is not None or payment_method_data is not None:
            if obj.status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise bad_request(
                    f"You cannot confirm this PaymentIntent because it has a status of {obj.status}."
                )
            if payment_method is not None:
                if not isinstance(payment_method, str) or not payment_method.startswith(
                    ("pm_", "card_", "src_")
                ):
                    raise UserError(400, "Bad request")
                PM._api_retrieve(payment_method)  # 404 when unknown
                chosen = payment_method
            else:
                chosen = new_wallet_payment_method(payment_method_data, obj.payment_method_types)
            # A new payment method starts a new attempt, as on Stripe.
            obj.payment_method = chosen
            obj.latest_charge = None
            obj.next_action = None
            obj._authentication_failed = False
        if return_url is not None:
            obj._return_url = return_url
        if obj.status != "requires_confirmation":
            raise bad_request(
                f"You cannot confirm this PaymentIntent because it has a status of {obj.status}."
            )
        obj._confirm(on_failure_now=obj._report_failure)
        return obj

    original_capture = PI._api_capture

    def api_capture(id: Any = None, amount_to_capture: Any = None, **kwargs: Any) -> Any:
        obj = retrieve_intent(id)
        if obj.status != "requires_capture":
            raise bad_request(
                f"This PaymentIntent could not be captured because it has a status of {obj.status}."
            )
        amount = obj.amount if amount_to_capture is None else R.try_convert_to_int(amount_to_capture)
        if not isinstance(amount, int) or not 0 < amount <= obj.amount:
            raise bad_request("amount_to_capture must be between 1 and the amount capturable.")
        original_capture(id, amount_to_capture=amount, **kwargs)
        obj._amount_captured = amount
        return obj

    PI._api_confirm = staticmethod(api_confirm)
    PI._api_capture = staticmethod(api_capture)
    # The server module builds its routes from extra_apis when imported: swap ours in first.
    replaced = {
        "/v1/payment_intents/{id}/confirm": api_confirm,
        "/v1/payment_intents/{id}/capture": api_capture,
    }
    R.extra_apis[:] = [(m, url, replaced.get(url, f)) for m, url, f in R.extra_apis]

    def pi_list_all(cls: Any, url: Any, customer: Any = None, **kwargs: Any) -> Any:
        li = super(PI, cls)._api_list_all(url, **kwargs)
        if customer is not None:
            li._list = [pi for pi in li._list if pi.customer == customer]
        return li

    PI._api_list_all = classmethod(pi_list_all)

    # Update, as Stripe: only before it is paid, processing or cancelled. New payment_method_types
    # that leave out the attached payment method's type detach it: the attempt with it is over
    # (a wallet's QR code or redirect can no longer be paid) and the intent waits for a new one.
    def pi_update(
        cls: Any,
        id: Any = None,
        payment_method_types: Any = None,
        payment_method_options: Any = None,
        metadata: Any = None,
        description: Any = None,
        **kwargs: Any,
    ) -> Any:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        obj = retrieve_intent(id)
        if obj.status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise bad_request(
                f"You cannot update this PaymentIntent because it has a status of {obj.status}."
            )
        types = payment_method_types
        if types is not None:
            if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
                raise UserError(400, "Bad request")
            unknown = sorted(set(types) - {"card", *WALLETS})
            if unknown:
                raise bad_request(
                    f"The payment method type {unknown[0]!r} is invalid.", param="payment_method_types"
                )
        if payment_method_options is not None and not isinstance(payment_method_options, dict):
            raise UserError(400, "Bad request")
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request")
        if description is not None and not isinstance(description, str):
            raise UserError(400, "Bad request")
        if types is not None:
            obj.payment_method_types = types
            attached = PM._api_retrieve(obj.payment_method) if obj.payment_method else None
            if attached is not None and attached.type not in types:
                obj.payment_method = None
                obj.latest_charge = None
                obj.next_action = None
                obj._authentication_failed = False
        if payment_method_options is not None:
            obj.payment_method_options = payment_method_options
        if metadata:
            obj.metadata = {**(obj.metadata or {}), **metadata}
        if description is not None:
            obj.description = description
        return obj

    PI._api_update = classmethod(pi_update)

    # Declines as Stripe reports them.
    original_declined = PM._charging_is_declined

    def charging_is_declined(self: Any) -> bool:
        if self.type == "card" and getattr(self, "_card_number", None) in DECLINED_CARDS:
            return True
        return bool(original_declined(self))

    PM._charging_is_declined = charging_is_declined

    def raise_failure(self: Any) -> None:
        number = getattr(PM._api_retrieve(self.payment_method), "_card_number", None)
        contents: dict[str, Any] = {
            "code": self.failure_code,
            "decline_code": DECLINED_CARDS.get(number or "", "generic_decline"),
            "charge": self.id,
        }
        if self.payment_intent:
            contents["payment_intent"] = PI._api_retrieve(self.payment_intent)._export()
        error = UserError(402, self.failure_message, contents)
        error.body["error"]["type"] = "card_error"
        raise error

    R.Charge._raise_failure = raise_failure

    original_canonical = PM._try_get_canonical_test_article

    def canonical(cls: Any, id: Any) -> Any:
        found = original_canonical(id)
        if found is None and id in EXTRA_TEST_PAYMENT_METHODS:
            card = {
                "number": EXTRA_TEST_PAYMENT_METHODS[id],
                "exp_month": "12",
                "exp_year": "2030",
                "cvc": "123",
            }
            found = PM(type="card", card=card)
        return found

    PM._try_get_canonical_test_article = classmethod(canonical)

    # Refunds made through the API fire refund.created and charge.refunded, as on Stripe.
    original_refund_create = R.Refund._api_create

    def refund_create(cls: Any, **data: Any) -> Any:
        refund = original_refund_create(**data)
        R.schedule_webhook(R.Event("refund.created", refund))
        R.schedule_webhook(R.Event("charge.refunded", R.Charge._api_retrieve(refund.charge)))
        return refund

    R.Refund._api_create = classmethod(refund_create)

    # The refunds of a PaymentIntent, whichever way they were made (localstripe filtered by the
    # intent's latest charge only, and failed with a 500 for an intent without one).
    def refund_list_all(
        cls: Any, url: Any, charge: Any = None, payment_intent: Any = None, **kwargs: Any
    ) -> Any:
        if payment_intent is None:
            return original_refund_list(url, charge=charge, **kwargs)
        if charge is not None or not isinstance(payment_intent, str) or not payment_intent.startswith("pi_"):
            raise UserError(400, "Bad request")
        intent = PI._api_retrieve(payment_intent)  # 404 when unknown
        latest = getattr(intent, "latest_charge", None)
        charge_id = getattr(latest, "id", latest)
        li = super(R.Refund, cls)._api_list_all(url, **kwargs)
        li._list = [
            r for r in li._list if r.payment_intent == intent.id or (charge_id and r.charge == charge_id)
        ]
        li._list.sort(key=lambda r: (r.created, r.id), reverse=True)
        return li

    original_refund_list = R.Refund._api_list_all
    R.Refund._api_list_all = classmethod(refund_list_all)

    from localstripe import server

    app = server.app

    # --- test-only endpoints: the buyer's side of a wallet payment ---

    def wallet_intent(request: Any) -> tuple[Any, Any]:
        obj = retrieve_intent(request.match_info["id"])
        pm = PM._api_retrieve(obj.payment_method) if obj.payment_method else None
        if obj.status != "requires_action" or pm is None or pm.type not in WALLETS:
            raise bad_request(
                f"PaymentIntent {obj.id} is not waiting for a wallet payment (status {obj.status})."
            )
        return obj, pm

    def after_form(request: Any, obj: Any) -> Any:
        if "redirect" in request.query:
            target = obj._return_url or f"{base_url}/_test/payment_intents/{obj.id}/wallet"
            raise web.HTTPSeeOther(target)
        return server.json_response(obj._export())

    async def wallet_paid(request: Any) -> Any:
        obj, _pm = wallet_intent(request)
        obj.next_action = None
        obj._create_charge(on_failure_now=obj._report_failure)  # succeeded + payment_intent.succeeded
        return after_form(request, obj)

    async def wallet_failed(request: Any) -> Any:
        obj, _pm = wallet_intent(request)
        charge = R.Charge(
            amount=obj.amount,
            currency=obj.currency,
            customer=obj.customer,
            source=obj.payment_method,
            capture=obj.capture_method != "manual",
        )
        charge.payment_intent = obj.id
        charge.status = "failed"
        charge.failure_code = "payment_method_provider_decline"
        charge.failure_message = "The payment was declined by the wallet or abandoned by the customer."
        obj.latest_charge = charge
        obj.next_action = None
        R.schedule_webhook(R.Event("payment_intent.payment_failed", obj))
        return after_form(request, obj)

    async def wallet_page(request: Any) -> Any:
        obj = retrieve_intent(request.match_info["id"])
        action = obj.next_action or {}
        qr = (action.get("wechat_pay_display_qr_code") or {}).get("image_data_url")
        base = f"/_test/payment_intents/{html.escape(obj.id)}"
        body = f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>localstripe wallet</title></head>
<body style="font:18px sans-serif;max-width:30em;margin:1em auto">
<h1>localstripe: simulated wallet</h1>
<p>{html.escape(obj.id)}: {obj.amount} {html.escape(str(obj.currency))} (smallest unit),
status <b>{html.escape(str(obj.status))}</b></p>
{f'<p><img src="{qr}" width="210" height="210" alt="QR"></p>' if qr else ""}
<form method="post" action="{base}/wallet_paid?redirect=1"><button>Pay</button></form>
<form method="post" action="{base}/wallet_failed?redirect=1"><button>Fail</button></form>
</body></html>"""
        return web.Response(text=body, content_type="text/html")

    async def qr_png(request: Any) -> Any:
        obj = retrieve_intent(request.match_info["id"])
        return web.Response(body=_qr_png(f"weixin://wxpay/bizpayurl?pr={obj.id}"), content_type="image/png")

    async def qr_svg(request: Any) -> Any:
        obj = retrieve_intent(request.match_info["id"])
        png = base64.b64encode(_qr_png(f"weixin://wxpay/bizpayurl?pr={obj.id}")).decode()
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="210" height="210">'
            f'<image href="data:image/png;base64,{png}" width="210" height="210"/></svg>'
        )
        return web.Response(text=svg, content_type="image/svg+xml")

    async def delete_webhook(request: Any) -> Any:
        webhooks._webhooks.pop(request.match_info["id"], None)
        return web.Response()

    async def move_clock(request: Any) -> Any:
        form = await request.post()
        if form.get("reset"):
            clock.offset = 0.0
        elif form.get("advance") is not None:
            try:
                seconds = float(str(form["advance"]))
            except ValueError:
                raise bad_request("advance must be a number of seconds.") from None
            if seconds < 0:
                raise bad_request("The clock only moves forward (reset=1 puts it back).")
            clock.offset += seconds
        return server.json_response({"now": clock.now(), "offset": clock.offset})

    app.router.add_post("/_test/payment_intents/{id}/wallet_paid", wallet_paid)
    app.router.add_post("/_test/payment_intents/{id}/wallet_failed", wallet_failed)
    app.router.add_get("/_test/payment_intents/{id}/wallet", wallet_page)
    app.router.add_get("/_test/payment_intents/{id}/qr.png", qr_png)
    app.router.add_get("/_test/payment_intents/{id}/qr.svg", qr_svg)
    app.router.add_delete("/_config/webhooks/{id}", delete_webhook)
    app.router.add_post("/_test/clock", move_clock)

    # The test endpoints stand for the buyer's phone, which has no API key.
    original_auth = server.auth_middleware

    @web.middleware
    async def auth_middleware(request: Any, handler: Any) -> Any:
        if request.path.startswith("/_test/"):
            return await handler(request)
        return await original_auth(request, handler)

    app.middlewares[:] = [auth_middleware if m is original_auth else m for m in app.middlewares]

    if idempotency:
        app.middlewares.insert(0, idempotency_middleware(web, clock))
    return app


class ServerClock:
    """The localstripe process's clock: the machine's plus an offset the tests move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset  # noqa: TID251  # the gateway's own clock, not the product's


clock = ServerClock()


def idempotency_middleware(web: Any, clock: ServerClock) -> Any:
    """Replay the first response to a repeated Idempotency-Key, as Stripe does, for
    IDEMPOTENCY_RETENTION seconds of `clock` after the key's first use."""
    # (authorization, key) → (fingerprint, status, body, first used at)
    replies: dict[tuple[str, str], tuple[str, int, str, float]] = {}

    @web.middleware
    async def middleware(request: Any, handler: Any) -> Any:
        if request.method == "DELETE" and request.path == "/_config/data":
            replies.clear()
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key or not request.path.startswith("/v1/"):
            return await handler(request)
        now = clock.now()
        for old in [k for k, saved in replies.items() if now - saved[3] >= IDEMPOTENCY_RETENTION]:
            del replies[old]  # pruned, as Stripe may do after a day
        scope = (request.headers.get("Authorization", ""), key)
        fingerprint = hashlib.sha256(request.path.encode() + b"\0" + await request.read()).hexdigest()
        saved = replies.get(scope)
        if saved is not None:
            if saved[0] != fingerprint:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                }
                return web.json_response({"error": error}, status=400)
            return web.Response(
                status=saved[1],
                text=saved[2],
                content_type="application/json",
                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
            )
        response = await handler(request)
        if response.status < 500 and getattr(response, "text", None) is not None:
            replies[scope] = (fingerprint, response.status, response.text, now)
        return response

    return middleware


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe on one address, with its own state file")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--state-file", type=Path, help="default: <tmp>/localstripe-<port>.pickle")
    parser.add_argument("--from-scratch", action="store_true", help="ignore the state saved in --state-file")
    parser.add_argument("--idempotency", action="store_true", help="honour Idempotency-Key as Stripe does")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-url", help="deliver every event to this URL (make run: the app's)")
    parser.add_argument("--webhook-secret-file", type=Path, help="the signing secret, read from this file")
    args = parser.parse_args(argv)

    state_file = (
        args.state_file or Path(tempfile.gettempdir()) / f"localstripe-{args.port}.pickle"
    ).resolve()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    display_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    base_url = f"http://{display_host}:{args.port}"

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    app = build_app(state_file, base_url, idempotency=args.idempotency)

    from aiohttp import web
    from localstripe.resources import store

    if not args.from_scratch:
        store.try_load_from_disk()
    if args.exit_with_parent:
        _exit_with_parent()
    if args.webhook_url:
        from localstripe.webhooks import register_webhook

        secret = args.webhook_secret_file.read_text().strip() if args.webhook_secret_file else ""
        if not secret:
            parser.error("--webhook-url needs --webhook-secret-file with the app's STRIPE_WEBHOOK_SECRET")
        register_webhook("wh_app", args.webhook_url, secret, None)

    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"localstripe listening on {base_url} (state: {state_file})", flush=True)
    access_log = None if args.quiet else logging.getLogger("aiohttp.access")
    web.run_app(app, sock=sock, access_log=access_log, print=None, shutdown_timeout=2)


if __name__ == "__main__":
    main()
