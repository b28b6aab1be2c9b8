"""The flash sale's door: a crowd's sold-out checkouts refused before the app, without the database.

When hundreds of buyers press "buy" on one flash-sale product in the same second, most of them
are too late. Inside the app each of those still costs a request's machinery, a token read, a
lock of the buyer's row and an idempotency lookup before the gate says no (about 5 ms of CPU and
4 database round trips each); the crowd's last answer waits for all of them. The door is a WSGI
middleware in front of Flask that answers them from Redis alone:

- It looks only at `POST /api/v1/orders` with a bearer token, a JSON body and `flash_items` (the
  flash-sale sign-ups whose price the buyer was shown). Anything else, or anything it cannot read,
  goes on to the app unchanged, which validates and answers as always.
- One script (services/campaigns/gate.py `RedisGate.door`) takes one unit of each claimed item's
  counter for a new checkout and records the checkout's pass (its token and idempotency key,
  hashed). Let in, the checkout goes on holding those units (`CheckoutInput.flash_tickets`): it
  takes out the units its order uses and asks the gate only for more; once the app has answered,
  the door gives back whatever was not taken out (a bad token, a bad field, any refusal before
  the gate), so no request can keep a unit it did not buy.
- A counter at 0: the 409 `campaign_quota_gone` the app itself would answer, rendered by the app
  once per language and replayed. A checkout let in before (a client repeating a lost answer)
  always goes on to the app, which finds its order by the key. A missing counter (never read, or
  expired) is read from the database by the door, once per process for the whole crowd
  (`RedisGate.warm`); one still missing (the item has no quota) leaves the checkout to the app.

The token is not checked at the door: a refusal says only that the campaign price sold out, which
every product page shows. A repeat is known by the same token and key: repeated with a new token
after the last unit, a checkout that was placed gets the refusal (its order is in the buyer's
list). Without Redis (no REDIS_URL) there is no gate and no door.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from services.campaigns import gate as campaign_gate
from services.campaigns.holds import quota_gone
from services.orders.cart import MAX_CART_LINES

PATH = "/api/v1/orders"
MAX_BODY = 64 * 1024  # an order's body is a few hundred bytes; a larger one goes to the app

StartResponse = Callable[..., Any]


class FlashDoor:
    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._refusals: dict[str, tuple[str, list[tuple[str, str]], bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != PATH:
            return self.wsgi_app(environ, start_response)
        refusal = self._door(environ)
        if refusal is not None:
            status, headers, body = refusal
            start_response(status, headers)
            return [body]
        tickets: dict[int, int] | None = environ.get(TICKETS)
        try:
            return self.wsgi_app(environ, start_response)  # the view has run when this returns
        finally:
            # The units the checkout did not take out (refused before it reached the gate: a bad
            # token, a bad field, another error) go back at once.
            for item_id, units in (tickets or {}).items():
                if units:
                    campaign_gate.current().give_back(item_id, units)

    def _door(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The refusal to send, or None to go on (with the tickets in the environ if let in)."""
        gate = campaign_gate.current()
        token = environ.get("HTTP_AUTHORIZATION", "")
        if not isinstance(gate, campaign_gate.RedisGate) or not token.startswith("Bearer "):
            return None
        if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # the app reads the same body
        try:
            body = json.loads(raw)
            claimed = body.get("flash_items") if isinstance(body, dict) else None
            key = body.get("idempotency_key") or environ.get("HTTP_IDEMPOTENCY_KEY") or ""
            if not isinstance(claimed, list) or not 0 < len(claimed) <= MAX_CART_LINES:
                return None
            if not isinstance(key, str):
                return None
            item_ids = sorted(
                {int(i) for i in claimed if isinstance(i, int | str) and not isinstance(i, bool)}
            )
        except (ValueError, TypeError, AttributeError):
            return None
        if not key or len(item_ids) != len(claimed) or min(item_ids) <= 0:
            return None
        pass_id = hashlib.sha256(f"{token}\n{key}".encode()).hexdigest()
        answer = gate.door(item_ids, pass_id)
        if answer == campaign_gate.UNKNOWN:
            # A cold counter (none yet, or expired): read once for the whole crowd, then ask again.
            gate.warm(self.app.extensions["database"].session_scope, item_ids)
            answer = gate.door(item_ids, pass_id)
        if answer == campaign_gate.SOLD_OUT:
            return self._refusal(environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        if answer == campaign_gate.LET_IN:
            environ[TICKETS] = {item_id: 1 for item_id in item_ids}
        return None

    def _refusal(self, accept_language: str) -> tuple[str, list[tuple[str, str]], bytes]:
        """The app's own 409 campaign_quota_gone (its body, translation and headers), rendered
        once per language."""
        # As the app's select_locale would choose for a client without a language cookie.
        best = parse_accept_header(accept_language, LanguageAccept).best_match(["zh", "zh_CN", "zh-CN", "en"])
        language = "en" if best and best.startswith("en") else "zh"
        cached = self._refusals.get(language)
        if cached is None:
            app = self.app
            headers = {"Accept": "application/json", "Accept-Language": language}
            with app.test_request_context(PATH, method="POST", headers=headers):
                response = app.make_response(app.handle_user_exception(quota_gone()))
                response = app.process_response(response)
                cached = (response.status, list(response.headers.items()), response.get_data())
            self._refusals[language] = cached
        return cached


# Where the door leaves the tickets it took for a checkout it let in: {item id: units}.
TICKETS = "gdm.flash_tickets"


def install(app: Flask) -> None:
    """Put the door in front of the app (create_app, when the flash-sale gate is in Redis)."""
    if isinstance(campaign_gate.current(), campaign_gate.RedisGate):
        app.wsgi_app = FlashDoor(app, app.wsgi_app)  # type: ignore[method-assign]
