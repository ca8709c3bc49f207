"""A local stand-in for Stripe's API (the app reaches it through STRIPE_API_BASE), and
webhook deliveries signed the way Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from core.config import Settings
from tests.client import ApiClient, Response
from tests.conftest import build_settings

SECRET_KEY = "sk_test_checkout"  # nosec B105: a test key for the stand-in
WEBHOOK_SECRET = "whsec_checkout"  # nosec B105


@dataclass
class StripeRequest:
    path: str
    headers: HTTPHeaders
    form: dict[str, str]  # the form-encoded body, e.g. {"metadata[order_id]": "7"}


class StripeStub:
    """Answers PaymentIntent and refund creation like Stripe, replaying the first answer
    for a repeated Idempotency-Key; `failing = True` makes every call a 500."""

    def __init__(self) -> None:
        self.requests: list[StripeRequest] = []
        self.failing = False
        self._answers: dict[str, dict[str, Any]] = {}
        self._server: HTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_to(self, path: str) -> list[StripeRequest]:
        return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        [sock] = bind_sockets(0, "127.0.0.1")
        self.port = sock.getsockname()[1]
        app = tornado.web.Application([(r"(/v1/.*)", _StripeHandler, {"stub": self})])
        self._server = HTTPServer(app)
        self._server.add_sockets([sock])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.stop()
        await self._server.close_all_connections()

    def answer(self, path: str, form: dict[str, str], key: str | None) -> dict[str, Any]:
        if key is not None and key in self._answers:
            return self._answers[key]
        number = len(self.requests_to(path))
        if path == "/v1/payment_intents":
            body: dict[str, Any] = {
                "id": f"pi_test_{number}",
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "client_secret": f"pi_test_{number}_secret_{number}",
                "metadata": {"order_id": form.get("metadata[order_id]")},
                "status": "requires_payment_method",
            }
        else:
            body = {
                "id": f"re_test_{number}",
                "object": "refund",
                "payment_intent": form.get("payment_intent"),
                "status": "succeeded",
            }
        if key is not None:
            self._answers[key] = body
        return body


class _StripeHandler(tornado.web.RequestHandler):
    def initialize(self, stub: StripeStub) -> None:
        self.stub = stub

    def post(self, path: str) -> None:
        form = dict(parse_qsl(self.request.body.decode()))
        self.stub.requests.append(StripeRequest(path, self.request.headers, form))
        self.set_header("Content-Type", "application/json")
        if self.stub.failing:
            self.set_status(500)
            self.set_header("Stripe-Should-Retry", "false")
            self.finish({"error": {"type": "api_error", "message": "stand-in failure"}})
            return
        key = self.request.headers.get("Idempotency-Key")
        self.finish(self.stub.answer(path, form, key))


@pytest.fixture(name="stripe_api")
def stripe_api_fixture(io_loop: IOLoop) -> Iterator[StripeStub]:
    """A stand-in for Stripe's API, running on the test's loop."""
    stub = StripeStub()
    stub.start()
    yield stub
    io_loop.run_sync(stub.stop)


@pytest.fixture(name="settings")
def stripe_settings_fixture(
    request: pytest.FixtureRequest, database_url: str, stripe_api: StripeStub
) -> Settings:
    """Replaces conftest's `settings` in a module that imports it: Stripe configured
    against the stand-in (a `settings` marker still wins)."""
    marker = request.node.get_closest_marker("settings")
    overrides = {
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": stripe_api.url,
        **(marker.kwargs if marker else {}),
    }
    return build_settings(database_url, overrides)


def signature(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<ts>,v1=<hex hmac_sha256(secret, "<ts>.<payload>")>."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(event_type: str, data_object: dict[str, Any], event_id: str = "evt_test_1") -> str:
    """A webhook payload as Stripe sends it."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "data": {"object": data_object},
        }
    )


def payment_intent(order_id: int, intent_id: str = "pi_test_1") -> dict[str, Any]:
    return {"id": intent_id, "object": "payment_intent", "metadata": {"order_id": str(order_id)}}


async def deliver(client: ApiClient, payload: str, sig: str | None = None) -> Response:
    """POST `payload` to the webhook, signed with WEBHOOK_SECRET unless `sig` is given."""
    headers = {"Stripe-Signature": signature(payload) if sig is None else sig}
    return await client.post("payments:stripe-webhook", body=payload, headers=headers)
