"""A latency-only stand-in for Stripe's HTTP API, for bench/checkout.py. Bench only.

localstripe is a functional server, not a fast one (it re-pickles its whole state on every
write: 10-30 writes/s here), so the checkout benchmark talks to this instead. It answers what
services/payments/stripe.py calls with valid Stripe JSON after `--delay-ms`, with no limit on
concurrent requests (every request waits on its own timer, as a remote service's latency is not
a queue):

    POST /v1/customers                       -> Customer
    POST /v1/payment_intents                 -> PaymentIntent (requires_payment_method)
    GET  /v1/payment_intents/{id}            -> the PaymentIntent
    GET  /v1/payment_intents?customer=...    -> a list (the app's lookup after a lost answer)
    POST /v1/payment_intents/{id}/cancel     -> the PaymentIntent, canceled

A POST repeated with the same Idempotency-Key gets the first answer again, as on Stripe. Bodies
are form-encoded with Stripe's bracket notation (metadata[k]=v, list[0]=v) and echoed back.

Control, for the bench: `POST /_bench/delay?ms=300` changes the delay of the requests that
arrive from then on; `GET /_bench/stats` counts the requests served per endpoint.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies; no chunked uploads, which the
requests library never sends for a form) rather than aiohttp: it shares two cores with the app,
the database and wrk, so it should cost as little as it can (about 0.1 ms per request).

    python bench/_checkout_fake_gateway.py --port 8421 --delay-ms 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import signal
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_HEADER_BYTES = 64 * 1024


class State:
    def __init__(self, delay_ms: float) -> None:
        self.delay = delay_ms / 1000
        self.intents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, tuple[int, bytes]] = {}
        self.stats: Counter[str] = Counter()


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation back into nested dicts (lists stay dicts keyed "0", "1", ...)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return out


def _list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    return [] if value is None else [value]


def _error(status: int, message: str, kind: str = "invalid_request_error") -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message}}


def customer(form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {
        "id": "cus_" + secrets.token_hex(7),
        "object": "customer",
        "created": int(time.time()),
        "livemode": False,
        "name": form.get("name"),
        "phone": form.get("phone"),
        "email": None,
        "metadata": form.get("metadata") or {},
    }


def payment_intent(state: State, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        amount = int(form["amount"])
    except (KeyError, ValueError):
        return _error(400, "Missing required param: amount.")
    if not form.get("currency"):
        return _error(400, "Missing required param: currency.")
    intent_id = "pi_" + secrets.token_hex(12)
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": form.get("capture_method") or "automatic",
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": str(form["currency"]).lower(),
        "customer": form.get("customer"),
        "description": form.get("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": form.get("metadata") or {},
        "next_action": None,
        "payment_method": None,
        "payment_method_types": _list(form.get("payment_method_types")) or ["card"],
        "status": "requires_payment_method",
    }
    state.intents[intent_id] = intent
    return 200, intent


def route(state: State, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    url = urlsplit(target)
    path = url.path.rstrip("/")
    form = unflatten(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if method == "POST" and path == "/v1/customers":
        return customer(form)
    if method == "POST" and path == "/v1/payment_intents":
        return payment_intent(state, form)
    if path.startswith("/v1/payment_intents/"):
        parts = path.split("/")  # "", v1, payment_intents, id[, action]
        intent = state.intents.get(parts[3])
        if intent is None:
            return _error(404, f"No such payment_intent: '{parts[3]}'")
        if method == "GET" and len(parts) == 4:
            return 200, intent
        if method == "POST" and len(parts) == 5 and parts[4] == "cancel":
            if intent["status"] == "succeeded":
                return _error(400, "This PaymentIntent has already succeeded.")
            intent["status"] = "canceled"
            return 200, intent
        return _error(404, "Unrecognized request URL.")
    if method == "GET" and path == "/v1/payment_intents":
        query = dict(parse_qsl(url.query))
        wanted = query.get("customer")
        found = [i for i in state.intents.values() if not wanted or i["customer"] == wanted]
        found.sort(key=lambda i: i["created"], reverse=True)
        limit = int(query.get("limit") or 10)
        return 200, {
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": len(found) > limit,
            "data": found[:limit],
        }
    if method == "POST" and path == "/_bench/delay":
        state.delay = float(dict(parse_qsl(url.query)).get("ms", 0)) / 1000
        return 200, {"delay_ms": state.delay * 1000}
    if method == "GET" and path == "/_bench/stats":
        return 200, dict(state.stats)
    return _error(404, "Unrecognized request URL.")


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Request-Id: req_{secrets.token_hex(7)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """One client connection: requests are parsed as they come, answered in order."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.previous: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES and self.transport is not None:
                    self.transport.close()
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                if self.transport is not None:
                    self.transport.close()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still coming
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            self.previous = asyncio.ensure_future(
                self.answer(self.previous, method, target, headers, body, keep_alive)
            )

    async def answer(
        self,
        previous: asyncio.Task[None] | None,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        state = self.state
        delay = state.delay
        if not target.startswith("/_bench/") and delay > 0:
            await asyncio.sleep(delay)
        key = headers.get("idempotency-key") if method == "POST" else None
        if key and key in state.by_key:
            status, payload = state.by_key[key]
        else:
            status, data = route(state, method, target, body)
            payload = json.dumps(data).encode()
            if key and status < 500:
                state.by_key[key] = (status, payload)
            endpoint = re.sub(r"/(pi|cus)_[0-9a-f]+", "/{id}", urlsplit(target).path)
            state.stats[f"{method} {endpoint} {status}"] += 1
        if previous is not None and not previous.done():
            await previous  # answers leave in the order the requests came
        if self.transport is not None:
            self.transport.write(_response(status, payload, keep_alive))
            if not keep_alive:
                self.transport.close()


async def serve(host: str, port: int, delay_ms: float) -> None:
    state = State(delay_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(state), host, port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    print(f"fake gateway on http://{host}:{port}, delay {delay_ms} ms", flush=True)
    async with server:
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.delay_ms))


if __name__ == "__main__":
    main()
